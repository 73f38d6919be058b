"""One live WebSocket connection: PCM in, JPEG frames out, controls on the fly, a recording at the end.

The protocol is in stream.protocol. Each connection owns one Session and one worker thread: every
push, control change and recording step runs there, in the order the messages came, so sessions
use both cores while the event loop only moves bytes. The loop awaits each push before reading the
next message, so a client sending faster than frames can be made is slowed by TCP, never buffered;
one that stops taking frames is dropped after SEND_TIMEOUT_S.

Frames go to the client first and to the recording after, so encoding the recording adds nothing
to the latency. A client that goes away frees its slot at once; its recording is thrown away.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from facetalk.errors import FacetalkError
from facetalk.media._files import remove_quietly
from facetalk.media.audio import SAMPLE_RATE
from facetalk.motion.controls import Controls
from facetalk.stream.avatars import StoredAvatar
from facetalk.stream.config import ServerConfig
from facetalk.stream.protocol import ProtocolError, controls_json, encode_frame, parse_message, updated_controls
from facetalk.stream.recording import Recorder, RecordingStore
from facetalk.stream.session import LiveFrame, Session, as_pcm

log = logging.getLogger("facetalk.serve")
T = TypeVar("T")

PUSH_SAMPLES = SAMPLE_RATE // 5  # a big message is pushed 0.2 s at a time: frames in flight stay few
SEND_TIMEOUT_S = 10.0  # a client that takes no frame for this long is gone (or stuck): its slot is freed
CLOSE_UNKNOWN_AVATAR = 4404
CLOSE_BUSY = 1013  # "try again later"
CLOSE_ERROR = 1011


class SessionSlots:
    """Counts live sessions against the limit (the server's `live_sessions` in GET /status)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._active = 0
        self._lock = threading.Lock()

    @property
    def active(self) -> int:
        return self._active

    def acquire(self) -> bool:
        with self._lock:
            if self._active >= self.limit:
                return False
            self._active += 1
            return True

    def release(self) -> None:
        with self._lock:
            self._active -= 1


@dataclass
class LiveContext:
    """What a connection needs from the server."""

    config: ServerConfig
    slots: SessionSlots
    recordings: RecordingStore


async def serve_live(ws: WebSocket, stored: StoredAvatar | None, ctx: LiveContext) -> None:
    """Run one connection from accept to close; never raises to the framework."""
    await ws.accept()
    if stored is None:
        await _refuse(ws, "no such avatar (unknown id, or evicted from the cache); create one with POST /avatars",
                      CLOSE_UNKNOWN_AVATAR)
        return
    if not ctx.slots.acquire():
        await _refuse(ws, f"the server is busy: {ctx.slots.limit} live sessions are running, the most it takes; "
                          "try again in a minute", CLOSE_BUSY)
        return
    live: LiveStream | None = None
    try:
        live = await LiveStream.start(stored, ctx)
        await ws.send_json({"fps": ctx.config.fps, "size": ctx.config.size, "sample_rate": SAMPLE_RATE,
                            "controls": controls_json(live.controls)})
        await live.run(ws)
    except WebSocketDisconnect:
        pass  # the client left: nothing to tell it
    except Exception as exc:
        if ws.client_state == WebSocketState.CONNECTED:  # a failure of ours, not a dropped client
            log.exception("live session failed")
            await _refuse(ws, f"internal error in the live session ({type(exc).__name__}); please report it",
                          CLOSE_ERROR)
    finally:
        ctx.slots.release()
        if live is not None:
            live.discard()


class LiveStream:
    """A Session, its Recorder and its worker thread, driven by one connection's messages."""

    def __init__(self, session: Session, recorder: Recorder | None, worker: ThreadPoolExecutor,
                 ctx: LiveContext) -> None:
        self.session = session
        self.recorder = recorder
        self.controls = Controls()
        self.ctx = ctx
        self._worker = worker
        self._unclaimed: Path | None = None  # a recording being finished, not yet offered

    @staticmethod
    async def start(stored: StoredAvatar, ctx: LiveContext) -> LiveStream:
        worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="facetalk-live")
        recorder = None
        if ctx.config.record:
            rid, _ = ctx.recordings.new_id()
            recorder = Recorder(ctx.recordings.folder / f"live-{rid}", ctx.config.size, ctx.config.fps)
        try:
            session = await asyncio.get_running_loop().run_in_executor(
                worker, lambda: stored.avatar.stream(fps=ctx.config.fps))
        except BaseException:
            if recorder is not None:
                recorder.abort()
            worker.shutdown(wait=False)
            raise
        return LiveStream(session, recorder, worker, ctx)

    async def run(self, ws: WebSocket) -> None:
        """Answer messages until the client ends the stream, leaves, or stays silent too long."""
        while True:
            try:
                message = await asyncio.wait_for(ws.receive(), self.ctx.config.idle_timeout_s)
            except asyncio.TimeoutError:
                await _refuse(ws, f"no message for {self.ctx.config.idle_timeout_s:g} s; the session is closed",
                              1000)
                return
            if message["type"] == "websocket.disconnect":
                raise WebSocketDisconnect(message.get("code", 1000))
            if message.get("bytes") is not None:
                if await self._audio(ws, message["bytes"]):
                    return
            elif message.get("text") is not None and await self._text(ws, message["text"]):
                return

    def discard(self) -> None:
        """Free everything: the recording (if not finished) and the worker, after its current job."""
        if self.recorder is not None:
            self._worker.submit(self.recorder.abort)
        if self._unclaimed is not None:  # the client left while its recording was being finished
            self._worker.submit(remove_quietly, self._unclaimed)
        self._worker.shutdown(wait=False)

    async def _audio(self, ws: WebSocket, data: bytes) -> bool:
        """Push one PCM message; True when the session hit its length limit and was ended."""
        try:
            pcm = as_pcm(data)
        except FacetalkError as exc:
            await ws.send_json({"error": f"{exc}; this message was dropped"})
            return False
        room = int(self.ctx.config.max_live_seconds * SAMPLE_RATE) - self.session.samples
        for start in range(0, min(len(pcm), room), PUSH_SAMPLES):
            part = pcm[start: min(start + PUSH_SAMPLES, room)]
            await self._send_frames(ws, await self._in_worker(self._push, part), part)
        if len(pcm) > room:
            minutes = self.ctx.config.max_live_seconds / 60
            await ws.send_json({"error": f"a live session streams at most {minutes:g} min of audio; "
                                         "it was ended here (its recording is kept)"})
            await self._end(ws)
            return True
        return False

    async def _text(self, ws: WebSocket, text: str) -> bool:
        """Apply a controls update and/or end the stream; True when ended."""
        try:
            message = parse_message(text)
            controls = updated_controls(self.controls, message["controls"]) if "controls" in message else None
        except ProtocolError as exc:
            await ws.send_json({"error": str(exc)})  # the session goes on unchanged
            return False
        if controls is not None:
            await self._in_worker(self.session.set_controls, controls)
            self.controls = controls
            await ws.send_json({"controls": controls_json(controls)})
        if message.get("end") is True:
            await self._end(ws)
            return True
        return False

    async def _end(self, ws: WebSocket) -> None:
        """Flush the last frames, finish the recording, say goodbye, close."""
        await self._send_frames(ws, await self._in_worker(self._close_session), None)
        recording = None
        if self.recorder is not None:
            rid, path = self.ctx.recordings.new_id()
            recorder, self.recorder, self._unclaimed = self.recorder, None, path
            try:
                if await self._in_worker(recorder.finish, path, self.session.marks.metadata()):
                    self.ctx.recordings.add(rid)
                    self._unclaimed = None
                    recording = f"/recordings/{rid}.mp4"
            except Exception as exc:
                log.exception("finishing a live recording failed")
                await ws.send_json({"error": f"the recording could not be written ({exc}); the stream itself is "
                                             "complete"})
        await ws.send_json({"end": True, "frames": self.session.frames_out,
                            "seconds": round(self.session.samples / SAMPLE_RATE, 3), "recording": recording})
        await ws.close(1000)

    def _push(self, pcm: np.ndarray) -> tuple[list[LiveFrame], list[bytes]]:
        frames = self.session.push(pcm)
        return frames, [encode_frame(f.index, f.time, f.image) for f in frames]

    def _close_session(self) -> tuple[list[LiveFrame], list[bytes]]:
        frames = self.session.close()
        return frames, [encode_frame(f.index, f.time, f.image) for f in frames]

    async def _send_frames(self, ws: WebSocket, made: tuple[list[LiveFrame], list[bytes]],
                           pcm: np.ndarray | None) -> None:
        frames, messages = made
        for message in messages:
            try:
                await asyncio.wait_for(ws.send_bytes(message), SEND_TIMEOUT_S)
            except asyncio.TimeoutError:
                log.warning("a live client took no frame for %g s; dropping it", SEND_TIMEOUT_S)
                raise WebSocketDisconnect(1008) from None
        if self.recorder is not None:  # queued behind nothing but this; the next push waits for it
            self._worker.submit(self._record, self.recorder, pcm, frames)

    @staticmethod
    def _record(recorder: Recorder, pcm: np.ndarray | None, frames: list[LiveFrame]) -> None:
        """Runs in the worker, where nobody awaits it: a failure drops the recording, not the stream."""
        try:
            if pcm is not None:
                recorder.add_audio(pcm)
            for frame in frames:
                recorder.add_frame(frame.image)
        except Exception:
            log.exception("recording a live session failed; it goes on without a recording")
            recorder.abort()

    async def _in_worker(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._worker, fn, *args)


async def _refuse(ws: WebSocket, message: str, code: int) -> None:
    """Tell the client why in one line, then close; a client already gone is fine."""
    try:
        await ws.send_json({"error": message})
        await ws.close(code)
    except Exception:
        pass
