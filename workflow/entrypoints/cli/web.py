"""What ``bangfu serve`` hands uvicorn from the settings."""

from __future__ import annotations

from typing import Any

from workflow.settings import Settings


def uvicorn_proxy_options(settings: Settings) -> dict[str, Any]:
    """Forwarded headers only from the proxies named in ``BANGFU_TRUSTED_PROXIES`` (default:
    none). uvicorn's own default trusts 127.0.0.1, so any local process could claim another
    client address and step around the login throttle."""
    if not settings.trusted_proxies:
        return {"proxy_headers": False, "forwarded_allow_ips": ""}
    return {"proxy_headers": True, "forwarded_allow_ips": ",".join(settings.trusted_proxies)}
