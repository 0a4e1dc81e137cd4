// A real OpenID provider (npm's oidc-provider, the certified Node implementation) for bangfu's
// single sign-on test. One static confidential client; the provider's development interactions
// log in whichever account name is typed (no real user interface) and the consent is one POST.
// Usage: node provider.mjs PORT CLIENT_ID CLIENT_SECRET REDIRECT_URI ; prints "ready" once listening.
import Provider from 'oidc-provider';

const [port, clientId, clientSecret, redirectUri] = process.argv.slice(2);
const issuer = `http://127.0.0.1:${port}`;

const provider = new Provider(issuer, {
  clients: [{
    client_id: clientId,
    client_secret: clientSecret,
    redirect_uris: [redirectUri],
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  cookies: { keys: ['bangfu-test-provider-cookie-key'] },
  claims: { openid: ['sub'], profile: ['preferred_username', 'name'] },
  // The scope's claims go into the ID token itself (bangfu reads the account from there).
  conformIdTokenClaims: false,
  features: { devInteractions: { enabled: true } },
  async findAccount(ctx, id) {
    return {
      accountId: id,
      async claims() { return { sub: `sub-${id}`, preferred_username: id, name: `测试 ${id}` }; },
    };
  },
});

const server = provider.listen(Number(port), '127.0.0.1', () => { console.log('ready'); });
process.on('SIGTERM', () => { server.close(); process.exit(0); });
