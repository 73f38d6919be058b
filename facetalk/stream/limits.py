"""Request-body size limits enforced while the body arrives, before anything is parsed or spooled.

Starlette's multipart parser spools file parts to disk without a size limit, so a check after
parsing would still let one request fill the disk. This ASGI middleware refuses an announced
Content-Length over the limit at once, and stops a body that grows past it mid-way (chunked
uploads announce nothing), answering 413 with a one-line JSON detail either way.

A client that is still sending when the 413 goes out must be able to read it: closing a connection
with unread data makes the kernel reset it, and most clients (curl without `Expect`, Python's
requests, browsers' fetch) then report only a broken pipe. So the rest of the body is read and
thrown away first, up to DRAIN_BYTES (a body announced larger than that is answered at once: the
client asked for the reset). A client that sent `Expect: 100-continue` has sent no body yet and is
answered at once. A body that stalls meanwhile is cut off by `timeouts.BodyTimeout` as usual.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from starlette.exceptions import HTTPException

Scope = dict[str, Any]
ASGIApp = Callable[..., Any]
LimitFor = Callable[[Scope], "tuple[int, str] | None"]  # (bytes, what is uploaded) or no limit

FORM_OVERHEAD = 64 * 1024  # multipart boundaries and other fields around the one file
DRAIN_BYTES = 64 << 20  # read and discarded after a 413, so the client gets to read the answer


def too_large(what: str, limit: int, size: int | None = None) -> str:
    """The one-line 413 message."""
    got = f" ({size / (1 << 20):.1f} MB)" if size is not None else ""
    return f"the {what} is too large{got}: the limit is {limit / (1 << 20):g} MB; send a smaller file"


class BodyLimit:
    """ASGI middleware: per-request body limits chosen by `limit_for(scope)`."""

    def __init__(self, app: ASGIApp, limit_for: LimitFor) -> None:
        self.app = app
        self.limit_for = limit_for

    async def __call__(self, scope: Scope, receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        rule = self.limit_for(scope) if scope["type"] == "http" else None
        if rule is None:
            await self.app(scope, receive, send)
            return
        limit, what = rule
        allowed = limit + FORM_OVERHEAD
        declared = _content_length(scope)
        if declared is not None and declared > allowed:
            if declared <= DRAIN_BYTES and not _expects_continue(scope):
                await _drain(receive, DRAIN_BYTES)
            await _reply_413(send, too_large(what, limit, declared))
            return
        seen = 0

        async def counted() -> dict[str, Any]:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > allowed:
                    if message.get("more_body", False):
                        await _drain(receive, DRAIN_BYTES)
                    raise HTTPException(413, too_large(what, limit))
            return message

        await self.app(scope, counted, send)


async def _drain(receive: Callable[..., Any], limit: int) -> None:
    """Read and discard the rest of a request body, at most ``limit`` bytes of it."""
    drained = 0
    while drained <= limit:
        message = await receive()
        if message["type"] != "http.request":
            return  # the client left (or was cut off for sending too slowly)
        drained += len(message.get("body", b""))
        if not message.get("more_body", False):
            return


def _expects_continue(scope: Scope) -> bool:
    return any(name == b"expect" and value.lower() == b"100-continue" for name, value in scope.get("headers", ()))


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _reply_413(send: Callable[..., Any], detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})
