"""Time limits on slow clients: a request's head (request line and headers) and its body.

uvicorn bounds only the idle time between two requests (`timeout_keep_alive`). A client that
opens a connection and sends its headers a byte at a time, or announces `Content-Length: 1000`,
sends 10 bytes and waits, would otherwise hold its connection (and whatever the request holds)
for ever; a few hundred such clients cost nothing to run and tie the server up.

- `head_guarded(protocol, seconds)`: a subclass of uvicorn's HTTP protocol that closes a
  connection whose request head has not fully arrived `seconds` after the connection was made
  or after the previous response was sent (a total deadline: trickling bytes does not extend it).
  It also answers a malformed request (one uvicorn cannot parse) with a 400 and the one-line JSON
  `{"detail"}` every other error has, instead of uvicorn's plain text.
- `BodyTimeout`: ASGI middleware for the body. Each read of it must bring data within
  `idle_s`, and the body as a whole must keep up an average of `min_rate` bytes/s after a grace
  of `idle_s`; otherwise the client gets a 408 with a one-line JSON detail and the connection is
  closed. The app sees the client as gone.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger("facetalk.serve")

Scope = dict[str, Any]
ASGIApp = Callable[..., Any]


class BodyTimeout:
    """ASGI middleware: a request body that stalls or trickles gets 408 and a closed connection."""

    def __init__(self, app: ASGIApp, idle_s: float, min_rate: float) -> None:
        self.app = app
        self.idle_s = idle_s
        self.min_rate = min_rate

    async def __call__(self, scope: Scope, receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        loop = asyncio.get_running_loop()
        started = loop.time()
        received = 0
        body_done = responded = timed_out = False

        async def guarded_send(message: dict[str, Any]) -> None:
            nonlocal responded
            if timed_out:
                return  # the 408 went out; the app's own late answer is dropped
            if message["type"] == "http.response.start":
                responded = True
            await send(message)

        async def timed_receive() -> dict[str, Any]:
            nonlocal received, body_done, timed_out
            if body_done or timed_out:
                return await receive() if not timed_out else {"type": "http.disconnect"}
            deadline = started + self.idle_s + received / self.min_rate
            wait = min(self.idle_s, deadline - loop.time())
            try:
                message = await asyncio.wait_for(receive(), max(wait, 0.0))
            except asyncio.TimeoutError:
                timed_out = True
                log.warning("%s %s: the request body came too slowly (%d bytes in %.1f s); closed",
                            scope.get("method"), scope.get("path"), received, loop.time() - started)
                if not responded:
                    await _reply_408(send, self.idle_s, self.min_rate)
                return {"type": "http.disconnect"}
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                body_done = not message.get("more_body", False)
            else:
                body_done = True
            return message

        try:
            await self.app(scope, timed_receive, guarded_send)
        except Exception:
            if not timed_out:
                raise
            # the app failed on a body cut short by the timeout: already answered with the 408


async def _reply_408(send: Callable[..., Any], idle_s: float, min_rate: float) -> None:
    detail = (f"the request body came too slowly: the server waits at most {idle_s:g} s for each part of it "
              f"and needs {min_rate / 1024:g} KB/s on average; send it again")
    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": 408,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


def malformed_request_response(reason: str) -> bytes:
    """The whole HTTP/1.1 400 response to a request that could not be parsed."""
    detail = (f"malformed HTTP request ({reason.strip().rstrip('.') or 'unreadable'}); "
              "send a valid HTTP/1.1 request")
    body = json.dumps({"detail": detail}).encode()
    return (b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\n"
            b"content-length: " + str(len(body)).encode() + b"\r\nconnection: close\r\n\r\n" + body)


def head_guarded(protocol: type[asyncio.Protocol], seconds: float) -> type[asyncio.Protocol]:
    """`protocol` (uvicorn's H11Protocol or HttpToolsProtocol) with a deadline on each request head."""

    class HeadGuarded(protocol):  # type: ignore[valid-type, misc]
        _head_timer: asyncio.TimerHandle | None = None

        def send_400_response(self, msg: str) -> None:
            """uvicorn's answer to a request it cannot parse, as JSON (uvicorn's own is plain text)."""
            self.transport.write(malformed_request_response(msg))
            self.transport.close()

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm_head_timer()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing():
                self._arm_head_timer()  # the next request's head must come within the deadline too

        def connection_lost(self, exc: Exception | None) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None
            super().connection_lost(exc)

        def _arm_head_timer(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
            self._head_timer = self.loop.call_later(seconds, self._head_timed_out, self.cycle)

        def _head_timed_out(self, waiting_after: Any) -> None:
            """Close the connection unless a new request's head came (or one is being answered)."""
            self._head_timer = None
            transport = self.transport
            if transport.is_closing() or transport.get_protocol() is not self:  # closed, or now a WebSocket
                return
            cycle = self.cycle
            if cycle is waiting_after and (cycle is None or cycle.response_complete):
                log.warning("%s: no complete request head within %g s; closed",
                            "%s:%d" % self.client if self.client else "a client", seconds)
                transport.close()

    HeadGuarded.__name__ = HeadGuarded.__qualname__ = f"HeadGuarded{protocol.__name__}"
    return HeadGuarded
