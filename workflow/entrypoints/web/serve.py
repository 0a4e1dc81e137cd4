"""Serving the web application as deployed: uvicorn, one or more worker processes sharing one
listening socket on which ``TCP_NODELAY`` is set.

uvicorn's own ``--workers N`` binds the listening socket itself with ``proto`` left at 0, and
asyncio turns Nagle's algorithm off only on accepted sockets reporting ``IPPROTO_TCP``, so with
more than one worker every keep-alive request after a connection's first waited about 40 ms for
the client's delayed ACK (measured: 48 ms against 5 ms for the same static file with one worker;
uvicorn issue #3149). Linux copies a listener's ``TCP_NODELAY`` to the sockets it accepts, so it
is set on the listener here, and ``bangfu serve`` (the Procfile's and the systemd unit's web
process) starts the workers on that socket.
"""

from __future__ import annotations

import socket
from typing import Any

import uvicorn
from uvicorn.supervisors import Multiprocess

from workflow.domain.errors import BadInput

#: The application factory every worker process calls (settings from the environment).
APP = "workflow.entrypoints.web.app:create_app"


def listening_socket(config: uvicorn.Config) -> socket.socket:
    """The bound listening socket of ``config``, with ``TCP_NODELAY`` for what it accepts."""
    sock = config.bind_socket()
    if sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def serve(*, host: str, port: int, workers: int = 1, **options: Any) -> None:
    """Run the web application until stopped: ``workers`` processes (one: this process) on one
    listening socket; ``options`` are :class:`uvicorn.Config`'s (log level, proxy headers)."""
    config = uvicorn.Config(APP, factory=True, host=host, port=port, workers=workers, **options)
    try:
        sock = listening_socket(config)
    except (OSError, SystemExit) as exc:  # in use, not allowed, no such address (uvicorn logs it and exits)
        raise BadInput(f"无法在 {host}:{port} 监听：端口已被占用、无权使用或地址无效", code="serve.bind") from exc
    if config.workers > 1:
        Multiprocess(config, sockets=[sock]).run()
    else:
        uvicorn.Server(config).run(sockets=[sock])
