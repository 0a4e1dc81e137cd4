"""Input guards in front of every route (pure ASGI, before FastAPI reads anything).

* **Body size, counted as it streams**: a request body larger than :data:`MAX_BODY_BYTES` is
  answered 413 as soon as the limit is crossed, whether or not it declared a ``Content-Length``
  (a chunked upload used to be read whole before the size check).
* **NUL characters**: PostgreSQL cannot store U+0000 in text, and no clerk types one. A query
  string, path, form or JSON body holding one (``%00``, ``\\u0000``, a raw NUL) is refused 422
  with a Chinese message before it reaches a use case. Multipart bodies (file uploads) are not
  scanned: files may hold any byte; their text fields are short, checked values.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from workflow.app.attachments import MAX_BYTES

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: The largest request body (an attachment or a purchase file, plus the multipart envelope).
MAX_BODY_BYTES = MAX_BYTES + 64 * 1024
TOO_LARGE = ("attachment.too_large", f"上传内容超过 {MAX_BYTES // 1024 // 1024} MB 上限")
NUL = ("input.nul", "输入中含有空字符（NUL，\\0），无法保存：请删除后重试")
_NUL_MARKS = (b"\x00", b"%00", b"\\u0000")


def _has_nul(data: bytes) -> bool:
    low = data.lower()
    return any(mark in low for mark in _NUL_MARKS)


def _json_has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_json_has_nul(k) or _json_has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_json_has_nul(v) for v in value)
    return False


def _body_has_nul(content_type: bytes, body: bytes) -> bool:
    """JSON: a NUL in any string (a ``%00`` typed in text is fine); a form: ``%00`` or a raw
    NUL; multipart (files): not scanned; anything else: a raw NUL."""
    if content_type.startswith(b"multipart/"):
        return False
    if b"json" in content_type:
        if b"\\u0000" not in body.lower() and b"\x00" not in body:
            return False
        try:
            return _json_has_nul(json.loads(body))
        except ValueError:
            return b"\x00" in body
    if content_type.startswith(b"application/x-www-form-urlencoded"):
        return _has_nul(body)
    return b"\x00" in body


async def _answer(scope: Scope, send: Send, status: int, code: str, message: str) -> None:
    path = str(scope.get("path", ""))
    if path.startswith("/api/") or path == "/api":
        body = json.dumps({"code": code, "message": message}, ensure_ascii=False).encode()
        ctype = b"application/json"
    else:
        body = f"<!doctype html><meta charset=utf-8><title>无法完成</title><p>{message}</p>".encode()
        ctype = b"text/html; charset=utf-8"
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", ctype), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


class InputGuard:
    def __init__(self, app: ASGIApp, *, max_body: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        raw_path = scope.get("raw_path") or str(scope.get("path", "")).encode()
        if _has_nul(bytes(scope.get("query_string") or b"")) or _has_nul(bytes(raw_path)):
            await _answer(scope, send, 422, *NUL)
            return
        headers = {k.lower(): v for k, v in scope.get("headers") or []}
        length = headers.get(b"content-length", b"")
        if length.isdigit() and int(length) > self.max_body:
            await _answer(scope, send, 413, *TOO_LARGE)
            return
        if scope.get("method") in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:  # counted as it streams: stop reading here
                await _answer(scope, send, 413, *TOO_LARGE)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if _body_has_nul(headers.get(b"content-type", b"").lower(), body):
            await _answer(scope, send, 422, *NUL)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)
