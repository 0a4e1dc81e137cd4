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

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SECRET = "bangfu-development-secret-change-me"
#: The history chain's HMAC key in development only (production refuses it: BANGFU_AUDIT_KEY).
DEFAULT_AUDIT_KEY = "bangfu-development-audit-key-change-me"
#: The history chain's hash functions (BANGFU_AUDIT_HASH): SHA-256, or SM3 (GB/T 32905-2016).
AUDIT_HASHES = ("sha256", "sm3")
#: The shortest audit key accepted outside development (characters).
AUDIT_KEY_MIN = 32


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
        return self


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
    ).check()


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
