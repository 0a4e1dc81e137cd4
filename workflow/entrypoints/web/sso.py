"""Single sign-on seam: OpenID Connect (authorization code flow with PKCE) with authlib's client.

``GET /login/sso`` sends the browser to the identity provider with a fresh ``state``, ``nonce``
and PKCE verifier kept in the (signed) session; ``GET /login/sso/callback`` takes the code back,
exchanges it at the provider's token endpoint (client_secret_basic), checks the ID token's
signature against the provider's keys (JWKS), its issuer, audience, expiry and nonce, and logs
in the bangfu account named by the configured claim (``BANGFU_OIDC_CLAIM``, default
``preferred_username``). The provider's endpoints come from its discovery document.

A sign-on session is not held to the local password rules (no forced change: the provider
vouches for the person); lockout, deactivation, idle timeout and the audit apply as to any login.
粤政易 / WeCom's OAuth fits the same seam (docs/security.md).
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from authlib.integrations.requests_client import OAuth2Session
from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from workflow.app import accounts
from workflow.domain.errors import BadInput, LoginFailed, NotFound, TooManyAttempts
from workflow.entrypoints.web import auth
from workflow.entrypoints.web.rendering import uow_for
from workflow.settings import Settings

router = APIRouter(include_in_schema=False)

#: How long the provider's discovery document and keys are kept (seconds).
METADATA_TTL = 3600
TIMEOUT = 10.0


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    if not settings.oidc_issuer:
        raise NotFound("本系统没有开通统一身份认证登录", code="login.sso_off")
    return settings


def _client(settings: Settings) -> OAuth2Session:
    return OAuth2Session(settings.oidc_client_id, settings.oidc_client_secret, scope="openid profile",
                         redirect_uri=f"{settings.base_url}/login/sso/callback",
                         code_challenge_method="S256", token_endpoint_auth_method="client_secret_basic")


def _metadata(request: Request, settings: Settings) -> dict[str, Any]:
    """The provider's discovery document and key set, fetched once an hour."""
    cached = getattr(request.app.state, "oidc_metadata", None)
    if cached and cached["issuer_setting"] == settings.oidc_issuer and cached["at"] > time.monotonic() - METADATA_TTL:
        return dict(cached)
    with _client(settings) as client:
        meta = client.get(f"{settings.oidc_issuer}/.well-known/openid-configuration", timeout=TIMEOUT,
                          withhold_token=True).json()
        jwks = client.get(meta["jwks_uri"], timeout=TIMEOUT, withhold_token=True).json()
    cached = {**meta, "jwks": jwks, "issuer_setting": settings.oidc_issuer, "at": time.monotonic()}
    request.app.state.oidc_metadata = cached
    return dict(cached)


def _login_again(request: Request, message: str) -> Response:
    auth.flash(request, message, "error")
    return RedirectResponse("/login", status_code=303)


@router.get("/login/sso")
def sso_start(request: Request, next: str = "/") -> Response:
    settings = _settings(request)
    meta = _metadata(request, settings)
    state, nonce = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    verifier = secrets.token_urlsafe(48)  # PKCE: 43 to 128 characters
    with _client(settings) as client:
        url, _ = client.create_authorization_url(meta["authorization_endpoint"], state=state, nonce=nonce,
                                                 code_verifier=verifier)
    safe_next = next if next.startswith("/") and not next.startswith("//") else "/"
    auth.session(request)["sso"] = {"state": state, "nonce": nonce, "verifier": verifier, "next": safe_next}
    auth.mark_dirty(request)
    return RedirectResponse(url, status_code=303)


@router.get("/login/sso/callback")
def sso_callback(request: Request, state: str = "", code: str = "", error: str = "") -> Response:
    settings = _settings(request)
    pending = auth.session(request).pop("sso", None)
    auth.mark_dirty(request)
    if error or not isinstance(pending, dict) or not code or not secrets.compare_digest(str(pending.get("state")), state):
        return _login_again(request, "统一身份认证登录没有完成（或已过期），请重新登录")
    meta = _metadata(request, settings)
    try:
        with _client(settings) as client:
            token = client.fetch_token(meta["token_endpoint"], code=code, code_verifier=pending["verifier"],
                                       timeout=TIMEOUT)
        claims = _id_token_claims(str(token.get("id_token", "")), meta, settings, str(pending["nonce"]))
    except (JoseError, BadInput, OSError, ValueError, KeyError) as exc:
        accounts.sso_failed(uow_for(request), client_ip=auth.client_ip(request), provider=settings.oidc_issuer,
                            reason=type(exc).__name__)
        return _login_again(request, "统一身份认证登录没有成功，请重新登录")
    try:
        uid = accounts.sso_login(uow_for(request), account=str(claims.get(settings.oidc_claim, "")),
                                 client_ip=auth.client_ip(request), provider=settings.oidc_issuer,
                                 policy=settings.security)
    except (LoginFailed, TooManyAttempts) as exc:
        return _login_again(request, exc.message)
    info = accounts.user_info(uow_for(request, True), user_id=uid, policy=settings.security)
    auth.login(request, info, via_sso=True)
    return RedirectResponse(str(pending.get("next") or "/"), status_code=303)


def _id_token_claims(id_token: str, meta: dict[str, Any], settings: Settings, nonce: str) -> dict[str, Any]:
    """The ID token's claims once its signature, issuer, audience, expiry and nonce hold."""
    keys = KeySet.import_key_set(meta["jwks"])
    token = jwt.decode(id_token, keys)
    jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": meta["issuer"]},
        aud={"essential": True, "value": settings.oidc_client_id},
        exp={"essential": True},
        nonce={"essential": True, "value": nonce},
    ).validate(token.claims)
    return dict(token.claims)
