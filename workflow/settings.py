"""One typed settings object, read from the environment.

The embedded default needs nothing: SQLite and the filesystem broker under ``var/``. Production
sets ``BANGFU_ENV=production`` plus ``BANGFU_DATABASE_URL``, ``BANGFU_BROKER_URL`` and a real
``BANGFU_SECRET_KEY``; outside development the default secret is refused.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from workflow.domain.errors import BadInput
from workflow.domain.security import SecurityRules

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SECRET = "bangfu-development-secret-change-me"
#: The history chain's HMAC key in development only (production refuses it: BANGFU_AUDIT_KEY).
DEFAULT_AUDIT_KEY = "bangfu-development-audit-key-change-me"
#: The history chain's hash functions (BANGFU_AUDIT_HASH): SHA-256, or SM3 (GB/T 32905-2016).
AUDIT_HASHES = ("sha256", "sm3")
#: The least retention of the operation audit log (days; BANGFU_OPLOG_RETENTION_DAYS).
OPLOG_RETENTION_MIN = 180
#: The shortest audit key accepted outside development (characters).
AUDIT_KEY_MIN = 32
#: How phones and e-mail addresses are kept at rest (BANGFU_PII_CIPHER): in clear, AES-256-GCM
#: (the ``cryptography`` package) or SM4 (GB/T 32907-2016, ``gmssl``; CBC with an HMAC-SM3 tag).
PII_CIPHERS = ("none", "aes-gcm", "sm4")


def _env(name: str, default: str) -> str:
    value = os.environ.get(name)
    return value if value not in (None, "") else default


@dataclass(frozen=True)
class Settings:
    env: str = "development"
    var_dir: Path = ROOT / "var"
    database_url: str = ""
    broker_url: str = ""
    result_backend: str | None = None
    queue_prefix: str = "bangfu"
    secret_key: str = DEFAULT_SECRET
    base_url: str = "http://127.0.0.1:8000"
    #: Where ``make run`` serves the pages (BANGFU_HOST, BANGFU_PORT).
    web_host: str = "127.0.0.1"
    web_port: int = 8000
    secure_cookies: bool = False
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 8025
    smtp_sender: str = "bangfu@localhost"
    smtp_tls: bool = False
    smtp_user: str | None = None
    smtp_password: str | None = None
    #: Addresses of reverse proxies whose X-Forwarded-For / X-Forwarded-Proto are believed
    #: (BANGFU_TRUSTED_PROXIES, comma separated). Default none: the client address is the
    #: socket's, so nobody can pick the address the login throttle counts.
    trusted_proxies: tuple[str, ...] = ()
    # Delivery: lease per claimed batch (renewed when half gone) and rows per batch.
    lease_seconds: float = 60.0
    delivery_batch: int = 100
    #: SMTP connections one delivery process keeps open and sends on in parallel
    #: (BANGFU_SMTP_CONNECTIONS); each message is still claimed by one of them only.
    smtp_connections: int = 4
    #: How long one delivery task runs before it hands over to the next (seconds,
    #: BANGFU_DELIVERY_RUN_SECONDS): bounded by time, not batches, so a slow relay cannot push
    #: a task past the broker's visibility timeout (docs/operations.md).
    delivery_run_seconds: float = 300.0
    # SMS provider (an HTTP endpoint); without a URL no SMS rows are written.
    sms_url: str | None = None
    sms_key: str | None = None
    sms_sign: str = "广东省总工会"
    # Operations: log level and format, the outbox's oldest pending age that makes the
    # worker unhealthy, the sweep lock's expiry, Redis' visibility timeout.
    log_level: str = "INFO"
    log_format: str = "json"
    outbox_max_age: int = 900
    sweep_lock_seconds: int = 1800
    visibility_timeout: int = 7200
    #: Who may read ``/metrics``: a bearer token (BANGFU_METRICS_TOKEN) and/or client
    #: addresses or networks (BANGFU_METRICS_ALLOW, comma separated, e.g. ``127.0.0.1,10.0.0.0/8``).
    #: With neither set only loopback clients are answered.
    metrics_token: str | None = None
    metrics_allow: tuple[str, ...] = ()
    #: The history chain: the HMAC key (kept outside the database) and the hash function.
    audit_key: str = DEFAULT_AUDIT_KEY
    audit_hash: str = "sha256"
    # Password and session rules (docs/security.md): BANGFU_PASSWORD_MIN_LENGTH (8),
    # BANGFU_PASSWORD_MIN_CLASSES (3 of lower, upper, digit, other), BANGFU_PASSWORD_HISTORY (3:
    # the last three are refused), BANGFU_PASSWORD_MAX_AGE_DAYS (90; 0 = never expires),
    # BANGFU_LOCKOUT_FAILURES (5 failures in a row lock the account), BANGFU_LOCKOUT_MINUTES (30;
    # 0 = locked until the security administrator unlocks), BANGFU_IDLE_MINUTES (30; 0 = no idle
    # limit). The absolute limit of a session stays 12 hours.
    password_min_length: int = 8
    password_min_classes: int = 3
    password_history: int = 3
    password_max_age_days: int = 90
    lockout_failures: int = 5
    lockout_minutes: int = 30
    idle_minutes: int = 30
    #: Personal data at rest: the cipher (PII_CIPHERS) and its key, kept outside the database
    #: (BANGFU_PII_KEY: 64 hex digits for AES-256-GCM, 32 for SM4). Values written in clear before
    #: the setting was turned on are still read, and are encrypted when next written.
    pii_cipher: str = "none"
    pii_key: str = ""
    #: Single sign-on (OpenID Connect; docs/security.md): the issuer (its discovery document is
    #: ISSUER/.well-known/openid-configuration), the client registered there, and the ID-token
    #: claim that names the bangfu account. Without an issuer the login page offers no sign-on.
    oidc_issuer: str = ""
    oidc_client_id: str = ""
    oidc_client_secret: str = ""
    oidc_claim: str = "preferred_username"
    oidc_label: str = "统一身份认证登录"
    #: The operation audit log's retention in the database, in days (网络安全法 §21: six months).
    oplog_retention_days: int = OPLOG_RETENTION_MIN
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def is_development(self) -> bool:
        return self.env in ("development", "test")

    def check(self) -> Settings:
        """Refuse unsafe settings outside development."""
        if not self.is_development and self.secret_key == DEFAULT_SECRET:
            raise BadInput(
                "BANGFU_SECRET_KEY 仍是开发默认值：生产环境必须设置随机密钥",
                code="settings.default_secret",
            )
        if not self.is_development and len(self.secret_key) < 32:
            raise BadInput("BANGFU_SECRET_KEY 太短：至少 32 个字符", code="settings.weak_secret")
        if self.audit_hash not in AUDIT_HASHES:
            raise BadInput(f"BANGFU_AUDIT_HASH 应为 {' 或 '.join(AUDIT_HASHES)}，现为“{self.audit_hash}”",
                           code="settings.audit_hash")
        if not self.is_development and self.audit_key == DEFAULT_AUDIT_KEY:
            raise BadInput("BANGFU_AUDIT_KEY 未设置（仍是开发默认值）：生产环境必须设置历史记录链的密钥，"
                           "并保存在数据库之外", code="settings.audit_key_missing")
        if not self.is_development and len(self.audit_key) < AUDIT_KEY_MIN:
            raise BadInput(f"BANGFU_AUDIT_KEY 太短：至少 {AUDIT_KEY_MIN} 个字符", code="settings.audit_key_weak")
        if self.pii_cipher not in PII_CIPHERS:
            raise BadInput(f"BANGFU_PII_CIPHER 应为 {' 或 '.join(PII_CIPHERS)}，现为“{self.pii_cipher}”",
                           code="settings.pii_cipher")
        if self.pii_cipher != "none":
            want = 32 if self.pii_cipher == "aes-gcm" else 16
            try:
                ok = len(bytes.fromhex(self.pii_key)) == want
            except ValueError:
                ok = False
            if not ok:
                raise BadInput(f"BANGFU_PII_KEY 应为 {want * 2} 位十六进制数（{want} 字节），保存在数据库之外",
                               code="settings.pii_key")
        if self.oplog_retention_days < OPLOG_RETENTION_MIN:
            raise BadInput(f"BANGFU_OPLOG_RETENTION_DAYS 至少 {OPLOG_RETENTION_MIN} 天（网络安全法要求网络日志留存不少于六个月），"
                           f"现为 {self.oplog_retention_days}", code="settings.number")
        return self

    @property
    def security(self) -> SecurityRules:
        """The password and session rules these settings set."""
        return SecurityRules(
            min_length=self.password_min_length, min_classes=self.password_min_classes,
            history=self.password_history, max_age_days=self.password_max_age_days,
            lockout_failures=self.lockout_failures, lockout_minutes=self.lockout_minutes,
            idle_minutes=self.idle_minutes,
        )


def _port(text: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise BadInput(f"BANGFU_PORT 应为 1–65535 的端口号，现为“{text}”", code="settings.port")
    return int(text)


def from_env() -> Settings:
    var_dir = Path(_env("BANGFU_VAR_DIR", str(ROOT / "var"))).resolve()
    return Settings(
        env=_env("BANGFU_ENV", "development"),
        var_dir=var_dir,
        database_url=_env("BANGFU_DATABASE_URL", f"sqlite:///{var_dir / 'bangfu.db'}"),
        broker_url=_env("BANGFU_BROKER_URL", "filesystem://"),
        result_backend=os.environ.get("BANGFU_RESULT_BACKEND") or None,
        queue_prefix=_env("BANGFU_QUEUE_PREFIX", "bangfu"),
        secret_key=_env("BANGFU_SECRET_KEY", DEFAULT_SECRET),
        base_url=_env("BANGFU_BASE_URL", "http://127.0.0.1:8000").rstrip("/"),
        web_host=_env("BANGFU_HOST", "127.0.0.1"),
        web_port=_port(_env("BANGFU_PORT", "8000")),
        secure_cookies=_env("BANGFU_SECURE_COOKIES", "0") == "1",
        smtp_host=_env("BANGFU_SMTP_HOST", "127.0.0.1"),
        smtp_port=int(_env("BANGFU_SMTP_PORT", "8025")),
        smtp_sender=_env("BANGFU_SMTP_SENDER", "bangfu@localhost"),
        smtp_tls=_env("BANGFU_SMTP_TLS", "0") == "1",
        smtp_user=os.environ.get("BANGFU_SMTP_USER") or None,
        smtp_password=os.environ.get("BANGFU_SMTP_PASSWORD") or None,
        trusted_proxies=tuple(p.strip() for p in _env("BANGFU_TRUSTED_PROXIES", "").split(",") if p.strip()),
        lease_seconds=_number("BANGFU_LEASE_SECONDS", 60.0),
        delivery_batch=int(_number("BANGFU_DELIVERY_BATCH", 100)),
        smtp_connections=int(_number("BANGFU_SMTP_CONNECTIONS", 4)),
        delivery_run_seconds=_number("BANGFU_DELIVERY_RUN_SECONDS", 300.0),
        sms_url=os.environ.get("BANGFU_SMS_URL") or None,
        sms_key=os.environ.get("BANGFU_SMS_KEY") or None,
        sms_sign=_env("BANGFU_SMS_SIGN", "广东省总工会"),
        log_level=_env("BANGFU_LOG_LEVEL", "INFO").upper(),
        log_format=_env("BANGFU_LOG_FORMAT", "json"),
        outbox_max_age=int(_number("BANGFU_OUTBOX_MAX_AGE", 900)),
        sweep_lock_seconds=int(_number("BANGFU_SWEEP_LOCK_SECONDS", 1800)),
        visibility_timeout=int(_number("BANGFU_VISIBILITY_TIMEOUT", 7200)),
        metrics_token=os.environ.get("BANGFU_METRICS_TOKEN") or None,
        metrics_allow=tuple(p.strip() for p in _env("BANGFU_METRICS_ALLOW", "").split(",") if p.strip()),
        audit_key=_env("BANGFU_AUDIT_KEY", DEFAULT_AUDIT_KEY),
        audit_hash=_env("BANGFU_AUDIT_HASH", "sha256").strip().lower(),
        password_min_length=_count("BANGFU_PASSWORD_MIN_LENGTH", 8, minimum=8),
        password_min_classes=min(_count("BANGFU_PASSWORD_MIN_CLASSES", 3, minimum=1), 4),
        password_history=_count("BANGFU_PASSWORD_HISTORY", 3, minimum=1),
        password_max_age_days=_count("BANGFU_PASSWORD_MAX_AGE_DAYS", 90),
        lockout_failures=_count("BANGFU_LOCKOUT_FAILURES", 5, minimum=1),
        lockout_minutes=_count("BANGFU_LOCKOUT_MINUTES", 30),
        idle_minutes=_count("BANGFU_IDLE_MINUTES", 30),
        pii_cipher=_env("BANGFU_PII_CIPHER", "none").strip().lower(),
        pii_key=_env("BANGFU_PII_KEY", "").strip(),
        oidc_issuer=_env("BANGFU_OIDC_ISSUER", "").rstrip("/"),
        oidc_client_id=_env("BANGFU_OIDC_CLIENT_ID", ""),
        oidc_client_secret=_env("BANGFU_OIDC_CLIENT_SECRET", ""),
        oidc_claim=_env("BANGFU_OIDC_CLAIM", "preferred_username"),
        oidc_label=_env("BANGFU_OIDC_LABEL", "统一身份认证登录"),
        oplog_retention_days=int(_number("BANGFU_OPLOG_RETENTION_DAYS", OPLOG_RETENTION_MIN)),
    ).check()


def _count(name: str, default: int, *, minimum: int = 0) -> int:
    """A whole number setting, at least ``minimum`` (0 means "off" where the setting says so)."""
    text = _env(name, str(default))
    try:
        value = int(text)
    except ValueError:
        raise BadInput(f"环境变量 {name} 应为整数，现为“{text}”", code="settings.number") from None
    if value < minimum:
        raise BadInput(f"环境变量 {name} 应不小于 {minimum}，现为“{text}”", code="settings.number")
    return value


def _number(name: str, default: float) -> float:
    text = _env(name, str(default))
    try:
        value = float(text)
    except ValueError:
        raise BadInput(f"环境变量 {name} 应为数字，现为“{text}”", code="settings.number") from None
    if value <= 0:
        raise BadInput(f"环境变量 {name} 应大于 0，现为“{text}”", code="settings.number")
    return value


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return from_env()
