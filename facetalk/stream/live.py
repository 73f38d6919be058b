"""One live WebSocket connection: PCM in, JPEG frames out, controls on the fly, a recording at the end.

The protocol is in stream.protocol. Each connection owns one Session and one worker thread: every
push, control change and recording step runs there, in the order the messages came, so sessions
use both cores while the event loop only moves bytes.

Two tasks per connection: a receiver reads the client's messages as they come, stamping each
chunk of sound with the time it is *due* (stream.shedding), and a processor pushes the sound (up to
0.2 s at a time), sends the frames and answers the text messages, in order. The receiver stops
reading while more than MAX_PENDING_S of sound (or MAX_PENDING_MESSAGES messages) waits, so a
client sending far ahead of real time is slowed by TCP, never buffered without bound; one that stops taking frames is dropped after
SEND_TIMEOUT_S. Knowing when each sound arrived, the processor sees a session falling behind and
sheds load (drops late frames, lowers the frame rate and size, tells the client with
`{"degraded"}`), and ends a session still more than `max_lag_s` behind: latency stays bounded.

Sessions are admitted against a limit the server measured itself (stream.capacity), and refused
while the running ones are already shedding. Frames go to the client first and to the recording
after, so encoding the recording adds nothing to the latency. A client that goes away frees its
slot at once; its recording is thrown away.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import cv2
import numpy as np
from starlette.concurrency import run_in_threadpool
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from facetalk.media._files import remove_quietly
from facetalk.media.audio import SAMPLE_RATE
from facetalk.motion.controls import Controls
from facetalk.motion.generate import LOOKAHEAD_FRAMES
from facetalk.stream.avatars import StoredAvatar
from facetalk.stream.capacity import Capacity
from facetalk.stream.config import ServerConfig
from facetalk.stream.protocol import ProtocolError, controls_json, encode_frame, parse_message, updated_controls
from facetalk.stream.recording import Recorder, RecordingStore
from facetalk.stream.session import Int16Bytes, LiveFrame, Session
from facetalk.stream.shedding import Shedder, shed_push

log = logging.getLogger("facetalk.serve")
T = TypeVar("T")

PUSH_SAMPLES = SAMPLE_RATE // 5  # sound is pushed 0.2 s at a time at most: frames in flight stay few
MAX_PENDING_S = 4.0  # sound read but not yet pushed, per session, before the receiver waits
MAX_PENDING_MESSAGES = 512  # of any kind (a flood of control updates waits too)
MAX_PENDING_TEXT = 64 * 1024  # characters of text messages read but not yet answered
REALTIME_CHUNK_S = 0.1  # a message up to this long is taken as recorded just now (see _stamp)
SEND_TIMEOUT_S = 10.0  # a client that takes no frame for this long is gone (or stuck): its slot is freed
BEHIND_WITHIN_S = 10.0  # a session that shed load this recently blocks new admissions
CLOSE_UNKNOWN_AVATAR = 4404
CLOSE_BUSY = 1013  # "try again later"
CLOSE_ERROR = 1011


class Admission:
    """Live sessions against the limit: fixed by the operator, or measured (stream.capacity) on
    first need. A new session is refused at the limit, and while any running one sheds load."""

    def __init__(self, limit: int | None, probe: Callable[[], Capacity] | None = None) -> None:
        self.limit = limit
        self.fixed = limit is not None
        self.capacity: Capacity | None = None
        self._probe = probe
        self._active: set[Shedder] = set()
        self._lock = threading.Lock()
        self._measuring = asyncio.Lock()

    @property
    def active(self) -> int:
        return len(self._active)

    def measured(self, capacity: Capacity) -> None:
        self.capacity = capacity
        if not self.fixed:
            self.limit = capacity.sessions

    def behind(self) -> int:
        now = time.monotonic()
        with self._lock:
            return sum(s.behind(now, BEHIND_WITHIN_S) for s in self._active)

    async def admit(self, shedder: Shedder) -> str | None:
        """None when `shedder`'s session is admitted (release it after), else why not, in one line."""
        if self.limit is None:
            async with self._measuring:
                if self.limit is None:
                    assert self._probe is not None, "a measured limit needs a probe"
                    self.measured(await run_in_threadpool(self._probe))
        assert self.limit is not None
        now = time.monotonic()
        with self._lock:
            if len(self._active) >= self.limit:
                if self.fixed:
                    return (f"the server is busy: {self.limit} live sessions are running, the most it takes; "
                            "try again in a minute")
                return (f"the server is busy: it measured that this machine serves {self.limit} live "
                        f"session{'s' * (self.limit != 1)} in real time, and {len(self._active)} "
                        f"{'are' if len(self._active) != 1 else 'is'} running; try again in a minute")
            behind = sum(s.behind(now, BEHIND_WITHIN_S) for s in self._active)
            if behind:
                return (f"the server is busy: its live sessions are already falling behind ({behind} of "
                        f"{len(self._active)} had to drop frames just now); try again in a minute")
            self._active.add(shedder)
            return None

    def release(self, shedder: Shedder) -> None:
        with self._lock:
            self._active.discard(shedder)


@dataclass
class LiveContext:
    """What a connection needs from the server."""

    config: ServerConfig
    admission: Admission
    recordings: RecordingStore


async def serve_live(ws: WebSocket, stored: StoredAvatar | None, ctx: LiveContext) -> None:
    """Run one connection from accept to close; never raises to the framework."""
    await ws.accept()
    if stored is None:
        await _refuse(ws, "no such avatar (unknown id, or evicted from the cache); create one with POST /avatars",
                      CLOSE_UNKNOWN_AVATAR)
        return
    shedder = Shedder(ctx.config.fps, ctx.config.size, ctx.config.frame_deadline_s)
    try:
        refusal = await ctx.admission.admit(shedder)
    except Exception as exc:
        log.exception("measuring the live capacity failed")
        await _refuse(ws, f"internal error while measuring the live capacity ({type(exc).__name__}); "
                          "please report it", CLOSE_ERROR)
        return
    if refusal is not None:
        await _refuse(ws, refusal, CLOSE_BUSY)
        return
    live: LiveStream | None = None
    try:
        live = await LiveStream.start(stored, ctx, shedder)
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
        ctx.admission.release(shedder)
        if live is not None:
            live.discard()


@dataclass
class _Inbox:
    """The client's messages in order, read but not yet handled: ("audio", pcm, due),
    ("text", text), ("idle",) or ("gone", code)."""

    events: deque[tuple[Any, ...]] = field(default_factory=deque)
    samples: int = 0  # of sound waiting
    chars: int = 0  # of text waiting
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    room: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def full(self) -> bool:
        return (self.samples > MAX_PENDING_S * SAMPLE_RATE or len(self.events) > MAX_PENDING_MESSAGES
                or self.chars > MAX_PENDING_TEXT)

    def put(self, event: tuple[Any, ...]) -> None:
        self.events.append(event)
        if event[0] == "audio":
            self.samples += len(event[1])
        elif event[0] == "text":
            self.chars += len(event[1])
        self.arrived.set()

    async def get(self) -> tuple[Any, ...]:
        while not self.events:
            self.arrived.clear()
            await self.arrived.wait()
        return self._taken(self.events.popleft())

    def more_audio(self, room: int) -> tuple[Any, ...] | None:
        """The next event if it is sound of at most `room` samples."""
        if self.events and self.events[0][0] == "audio" and len(self.events[0][1]) <= room:
            return self._taken(self.events.popleft())
        return None

    def _taken(self, event: tuple[Any, ...]) -> tuple[Any, ...]:
        if event[0] == "audio":
            self.samples -= len(event[1])
        elif event[0] == "text":
            self.chars -= len(event[1])
        if not self.full:
            self.room.set()
        return event


class LiveStream:
    """A Session, its Recorder, its Shedder and its worker thread, driven by one connection's messages."""

    def __init__(self, session: Session, recorder: Recorder | None, worker: ThreadPoolExecutor,
                 ctx: LiveContext, shedder: Shedder) -> None:
        self.session = session
        self.recorder = recorder
        self.controls = Controls()
        self.ctx = ctx
        self.shedder = shedder
        self._worker = worker
        self._unclaimed: Path | None = None  # a recording being finished, not yet offered
        self._inbox = _Inbox()
        self._bytes = Int16Bytes()
        self._received = 0  # samples read from the client
        self._anchor: float | None = None  # when sample 0 would have been spoken, as the client keeps time

    @staticmethod
    async def start(stored: StoredAvatar, ctx: LiveContext, shedder: Shedder) -> LiveStream:
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
        return LiveStream(session, recorder, worker, ctx, shedder)

    async def run(self, ws: WebSocket) -> None:
        """Answer messages until the client ends the stream, leaves, or stays silent too long."""
        receiver = asyncio.create_task(self._receive(ws))
        try:
            await self._process(ws)
        finally:
            receiver.cancel()
            await asyncio.wait({receiver})

    def discard(self) -> None:
        """Free everything: the recording (if not finished) and the worker, after its current job."""
        if self.recorder is not None:
            self._worker.submit(self.recorder.abort)
        if self._unclaimed is not None:  # the client left while its recording was being finished
            self._worker.submit(remove_quietly, self._unclaimed)
        self._worker.shutdown(wait=False)

    # -- the receiver -------------------------------------------------------------------------------

    async def _receive(self, ws: WebSocket) -> None:
        inbox = self._inbox
        try:
            while True:
                try:
                    message = await asyncio.wait_for(ws.receive(), self.ctx.config.idle_timeout_s)
                except asyncio.TimeoutError:
                    inbox.put(("idle",))
                    return
                if message["type"] == "websocket.disconnect":
                    inbox.put(("gone", message.get("code", 1000)))
                    return
                if message.get("bytes") is not None:
                    self._stamp(message["bytes"])
                elif message.get("text") is not None:
                    inbox.put(("text", message["text"]))
                while inbox.full:  # far ahead of the answers: let TCP slow the client down
                    inbox.room.clear()
                    await inbox.room.wait()
        except asyncio.CancelledError:
            raise
        except Exception:  # the connection broke under us
            inbox.put(("gone", 1006))

    def _stamp(self, data: bytes) -> None:
        """Queue a message's sound, 0.2 s pieces each with its due time.

        A short message (a microphone's 20 ms) is taken as just recorded: its end is due now. A long
        one (a file sent at once) may run ahead of real time: its first REALTIME_CHUNK_S is due now
        and the rest as it would be spoken. Sound that comes later than the clock so far says (a
        pause, a slow network) moves the clock on, so nobody is blamed for the client's own delays.
        """
        pcm = self._bytes.feed(data)
        if not len(pcm):
            return
        now = time.monotonic()
        start = self._received
        self._received += len(pcm)
        heard = min(len(pcm), int(REALTIME_CHUNK_S * SAMPLE_RATE))
        clock = now - (start + heard) / SAMPLE_RATE
        self._anchor = clock if self._anchor is None else max(self._anchor, clock)
        for k in range(0, len(pcm), PUSH_SAMPLES):
            piece = pcm[k:k + PUSH_SAMPLES]
            end = start + k + len(piece)
            self._inbox.put(("audio", piece, max(now, self._anchor + end / SAMPLE_RATE)))

    # -- the processor ------------------------------------------------------------------------------

    async def _process(self, ws: WebSocket) -> None:
        while True:
            event = await self._inbox.get()
            if event[0] == "audio":
                batch = [event]
                size = len(event[1])
                while (more := self._inbox.more_audio(PUSH_SAMPLES - size)) is not None:
                    batch.append(more)
                    size += len(more[1])
                if await self._audio(ws, batch):
                    return
            elif event[0] == "text":
                if await self._text(ws, event[1]):
                    return
            elif event[0] == "idle":
                await _refuse(ws, f"no message for {self.ctx.config.idle_timeout_s:g} s; the session is closed", 1000)
                return
            else:
                raise WebSocketDisconnect(event[1])

    async def _audio(self, ws: WebSocket, batch: list[tuple[Any, ...]]) -> bool:
        """Push a batch of sound; True when the session was ended (length limit, or too far behind)."""
        pcm = np.concatenate([e[1] for e in batch]) if len(batch) > 1 else batch[0][1]
        room = int(self.ctx.config.max_live_seconds * SAMPLE_RATE) - self.session.samples
        part = pcm[:max(room, 0)]
        if len(part):
            lag = time.monotonic() - batch[0][2]
            if lag > self.ctx.config.max_lag_s:
                log.warning("a live session fell %.1f s behind; ended", lag)
                await ws.send_json({"error": f"the server fell {lag:.1f} s behind this live session, more than the "
                                             f"{self.ctx.config.max_lag_s:g} s it allows, although it dropped "
                                             "frames to keep up; it was ended here (its recording is kept)"})
                await self._end(ws)
                return True
            dues, end = [], self.session.samples
            for e in batch:
                end += len(e[1])
                dues.append((end, e[2]))
            await self._send_frames(ws, await self._in_worker(self._push, part, dues), part)
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
        if message.get("type") == "interrupt":  # the sound before it was pushed: the session's own lookahead goes
            await self._in_worker(self.session.interrupt)
            await ws.send_json({"interrupted": {"at": round(self.session.samples / SAMPLE_RATE, 4)}})
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
                if await self._in_worker(recorder.finish, path, self.session.marks.metadata(), self.session.frames_out):
                    self.ctx.recordings.add(rid)
                    self._unclaimed = None
                    recording = f"/recordings/{rid}.mp4"
            except Exception as exc:
                log.exception("finishing a live recording failed")
                await ws.send_json({"error": f"the recording could not be written ({exc}); the stream itself is "
                                             "complete"})
        await ws.send_json({"end": True, "frames": self.session.frames_out, "dropped": self.session.dropped,
                            "seconds": round(self.session.samples / SAMPLE_RATE, 3), "recording": recording})
        await ws.close(1000)

    # -- in the worker ------------------------------------------------------------------------------

    def _push(self, pcm: np.ndarray, dues: list[tuple[int, float]]) -> tuple[list[LiveFrame], list[bytes], list[float]]:
        """Push sound, rendering the frames the Shedder keeps; (frames, messages, due times)."""
        fps, shedder = self.session.fps, self.shedder

        def due(index: int) -> float:
            needed = (index + 1 + LOOKAHEAD_FRAMES) * SAMPLE_RATE / fps  # the sound that completes the frame
            return next((d for end, d in dues if end >= needed - 0.5), dues[-1][1])

        frames = shed_push(self.session, pcm, shedder, due)
        return frames, [self._encode(f) for f in frames], [due(f.index) for f in frames]

    def _close_session(self) -> tuple[list[LiveFrame], list[bytes], list[float]]:
        frames = self.session.close()
        return frames, [self._encode(f) for f in frames], []

    def _encode(self, frame: LiveFrame) -> bytes:
        size = self.shedder.current_size
        image = frame.image
        if size != image.shape[0]:
            image = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)
        return encode_frame(frame.index, frame.time, image)

    # -- sending ------------------------------------------------------------------------------------

    async def _send_frames(self, ws: WebSocket, made: tuple[list[LiveFrame], list[bytes], list[float]],
                           pcm: np.ndarray | None) -> None:
        frames, messages, dues = made
        for k, message in enumerate(messages):
            try:
                await asyncio.wait_for(ws.send_bytes(message), SEND_TIMEOUT_S)
            except asyncio.TimeoutError:
                log.warning("a live client took no frame for %g s; dropping it", SEND_TIMEOUT_S)
                raise WebSocketDisconnect(1008) from None
            if dues:
                now = time.monotonic()
                self.shedder.sent(now - dues[k], now)
        if pcm is not None:
            notice = self.shedder.update(time.monotonic())
            if notice is not None:
                log.info("live session: %s", notice["degraded"]["reason"])
                await ws.send_json(notice)
        if self.recorder is not None:  # queued behind nothing but this; the next push waits for it
            self._worker.submit(record_frames, self.recorder, pcm, frames)

    async def _in_worker(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._worker, fn, *args)


def record_frames(recorder: Recorder, pcm: np.ndarray | None, frames: list[LiveFrame]) -> None:
    """Add a push's sound and frames to a live recording. Runs in a session's worker, where nobody
    awaits it: a failure drops the recording, not the stream."""
    try:
        if pcm is not None:
            recorder.add_audio(pcm)
        for frame in frames:
            recorder.add_frame(frame.image, frame.index)
    except Exception:
        log.exception("recording a live session failed; it goes on without a recording")
        recorder.abort()


async def _refuse(ws: WebSocket, message: str, code: int) -> None:
    """Tell the client why in one line, then close; a client already gone is fine."""
    try:
        await ws.send_json({"error": message})
        await ws.close(code)
    except Exception:
        pass
