"""WebRTC for `facetalk serve`: the browser's sound in, the talking face and the same sound out.

    browser mic/file --Opus--> aiortc --48 kHz--> PcmResampler --16 kHz--> Session (worker thread)
                                   \\--48 kHz, held in a SpeechBuffer--> SpeechTrack --Opus--> browser
                                                              frames --> AvatarTrack --VP8--> browser
    data channel: the WebSocket protocol's JSON control messages, both ways

One clock. The session's timeline is the sound pushed into it (16 kHz samples, sound or silence);
frame i shows the sound of [i/fps, (i+1)/fps). A MediaClock maps session time t to the wall time
`start + delay + t` that stamps what belongs to t: the video frame whose time is t and the 20 ms of
sound starting at t. Their RTP timestamps come from the same session times, and their RTCP sender
reports pair each with that wall time (_OnClockSender; aiortc's own pairs carry the send time, late
by the encoding), so a browser lines up lips and sound from the reports alone (aiortc issue #901 is
what happens when each track keeps its own clock); the sound is fed to Opus its lookahead early
(OPUS_LOOKAHEAD), so what plays at a stamp is the sound of it. The frame leaves at that time; its
sound AUDIO_LEAD_S earlier, on a schedule that never pauses (MediaClock.audio_due), because
Chromium's audio path is longer than its video path and its sync leaves up to 30 ms of that. The delay
covers the frame of lookahead, the render and jitter: it starts at `ServerConfig.webrtc_delay_s` and
follows what this machine needs (MediaClock.adapt: the time 90 % of recent frames took, plus a
margin), so a fast server adds little latency and a busy one stays in sync. A frame later than the
delay still goes as soon as it is made.

While no sound arrives (no audio track yet, a muted or stopped one), the session is fed silence at
real time, so frames keep coming: the session makes a listening face from silence.

Everything else is the WebSocket path's: admission against the measured capacity and load shedding
(stream.live, stream.shedding), recordings (stream.recording), controls (stream.protocol). One
worker thread per connection does all the session's work, so the event loop only moves bytes.
Closing the peer connection (or its failing) frees the slot, the worker and any unfinished recording.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import fractions
import json
import logging
import os
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import av
import cv2
import numpy as np
from aiortc import (RTCConfiguration, RTCDataChannel, RTCIceServer, RTCPeerConnection, RTCRtpSender,
                    RTCSessionDescription)
from aiortc.codecs.opus import OpusEncoder
from aiortc.codecs.vpx import Vp8Encoder, number_of_threads
from aiortc.jitterbuffer import JitterFrame
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.utils import uint16_gt
from av import AudioFrame, Packet, VideoFrame

from facetalk.media._files import remove_quietly
from facetalk.media.audio import SAMPLE_RATE, PcmResampler
from facetalk.motion.controls import Controls
from facetalk.motion.generate import LOOKAHEAD_FRAMES
from facetalk.stream.avatars import StoredAvatar
from facetalk.stream.live import LiveContext, record_frames
from facetalk.stream.protocol import ProtocolError, clip, controls_json, parse_message, updated_controls
from facetalk.stream.recording import Recorder
from facetalk.stream.session import LiveFrame, Session
from facetalk.stream.shedding import Shedder, shed_push

log = logging.getLogger("facetalk.serve")
T = TypeVar("T")

OUT_RATE = 48000  # the speech track's rate: Opus's own, so aiortc does not resample it
AUDIO_PTIME_S = 0.02  # 20 ms of sound per audio frame, as WebRTC packetises it
# libopus (aiortc's encoder, application "voip") looks this far ahead: the sound decoded from the packet
# stamped t is the sound of t - 6.5 ms (aiortc cancels the encoder's negative first pts, not its delay).
# The speech track feeds the encoder this much ahead, so what is heard at t is the sound of t.
OPUS_LOOKAHEAD = 312  # samples at OUT_RATE
# The sound of session time t leaves this long before the frame of t; its RTP stamp and sender report
# stay on the media clock, so a receiver that plays by them (every browser) is moved only by when the
# packets arrive. Chromium's audio path (NetEq's jitter buffer, 30-50 ms here quiet, + 30 ms of output
# delay) is longer than its video path, and its A/V sync adds video delay only while the two differ by
# more than 30 ms (kMinDeltaMs): sent together, the lips stayed up to 30 ms ahead of the sound
# (Chromium, quiet: median +16...+29 ms, p95 +30...+93). Sound that arrives 25 ms earlier starts the
# two about even, inside that dead zone, so the sync has nothing to chase (median -3...+19, p95
# +8...+35 in 23 of 25 runs). The gap, read as lips - sound + this lead, was about 35 ms (24-52);
# set a little under it, what is left is on the lips-ahead side, the one people notice less.
AUDIO_LEAD_S = 0.025
# The sound's delay rises at most this fast (s per s of sound) when the frames' delay jumps up, and
# falls with it at once. Sound that paused for each rise read to NetEq as jitter, and NetEq then held
# more of it (60-105 ms instead of ~40 under load). Rising slowly, the sound runs ahead of its frames
# by the rise until it catches up: at 5 ms/s a 60-70 ms rise left the lips 30 ms behind the sound in
# Chromium for the rest of the run (8 s); at 20 ms/s the runs read with getStats stayed within +-30.
AUDIO_RISE = 0.02
VIDEO_CLOCK = 90000  # RTP's video clock (Hz)
TICK_S = 0.02  # the driver looks for sound (or the lack of it) this often
SILENCE_AFTER_S = 0.1  # no sound for this long: silence is pushed, up to real time
MIN_SILENCE = SAMPLE_RATE // 50  # pushed at a time at least (20 ms)
MAX_PUSH_S = 0.2  # sound pushed at once at most, as on the WebSocket path
MAX_PENDING_S = 4.0  # sound received but not yet pushed; beyond, the oldest is dropped
MAX_MESSAGES = 512  # data channel messages waiting; beyond, they are refused
MAX_EARLY_MESSAGES = 64  # server messages held until the data channel opens
MAX_SDP_CHARS = 64 * 1024
CONNECT_TIMEOUT_S = 30.0  # an answered offer that does not connect within this frees its slot
END_GRACE_S = 10.0  # after the end message, the client's own close is awaited this long
SKIP_LATE_S = 0.1
DELAY_WINDOW = 50  # frames (2 s) the delay is judged over
DELAY_PERCENTILE = 90
DELAY_MARGIN_S = 0.01
DELAY_DOWN_S = 0.002
STATS_EVERY_S = 1.0  # the server's latency is sent on the data channel this often
LATENCY_WINDOW_S = 2.0


class Busy(Exception):
    """The server takes no more live sessions now; the text says why (an HTTP 503)."""


@dataclass(frozen=True)
class Offer:
    description: RTCSessionDescription
    controls: Controls


def parse_offer(body: object) -> Offer:
    """`{"sdp", "type": "offer", "controls"?}` as posted -> an Offer, or a ProtocolError saying what
    was wrong (the SDP itself is judged by aiortc, in `WebRTCHub.answer`)."""
    if not isinstance(body, dict):
        raise ProtocolError('send a JSON object {"sdp": ..., "type": "offer"} (an RTCSessionDescription)')
    unknown = sorted(set(body) - {"sdp", "type", "controls"})
    if unknown:
        raise ProtocolError(f"unknown field {clip(unknown[0])}; send sdp, type and optionally controls")
    sdp, kind = body.get("sdp"), body.get("type")
    if kind != "offer":
        raise ProtocolError(f'type must be "offer", got {clip(json.dumps(kind), quote=False)}')
    if not isinstance(sdp, str) or not sdp.strip():
        raise ProtocolError("sdp must be the offer's SDP text (RTCPeerConnection.createOffer().sdp)")
    if not sdp.lstrip().startswith("v=0"):
        raise ProtocolError(f"sdp must be SDP text starting with v=0, got {clip(sdp)}")
    if len(sdp) > MAX_SDP_CHARS:
        raise ProtocolError(f"sdp must be at most {MAX_SDP_CHARS} characters, got {len(sdp)}")
    controls = updated_controls(Controls(), body["controls"]) if body.get("controls") is not None else Controls()
    return Offer(RTCSessionDescription(sdp=sdp, type="offer"), controls)


# -- the clock and the tracks -----------------------------------------------------------------------

class MediaClock:
    """Session time -> the wall time (time.monotonic) at which media for it leaves: start + delay + t.

    The delay follows the frames: `adapt` is told how long after its session time each frame was
    ready, and moves the delay toward the DELAY_PERCENTILE of the recent ones plus DELAY_MARGIN_S,
    up at once (late frames would break the sync) and down slowly (DELAY_DOWN_S a frame, so the
    sound is not rushed), never below `min_s`.
    """

    def __init__(self, delay_s: float, min_s: float = 0.0) -> None:
        self.delay_s = max(delay_s, min_s)
        self.min_s = min_s
        self.start: float | None = None
        self.started = asyncio.Event()
        self._needed: deque[float] = deque(maxlen=DELAY_WINDOW)
        self.audio_delay_s = self.delay_s - AUDIO_LEAD_S

    def adapt(self, needed_s: float) -> None:
        """A frame was ready `needed_s` after start + its time."""
        self._needed.append(needed_s)
        if len(self._needed) < DELAY_WINDOW // 4:
            return
        target = max(self.min_s, float(np.percentile(self._needed, DELAY_PERCENTILE)) + DELAY_MARGIN_S)
        self.delay_s = target if target > self.delay_s else max(target, self.delay_s - DELAY_DOWN_S)

    def begin(self, now: float) -> None:
        if self.start is None:
            self.start = now
            self.started.set()

    def elapsed(self, now: float) -> float:
        assert self.start is not None
        return now - self.start

    def due(self, t: float) -> float:
        assert self.start is not None
        return self.start + self.delay_s + t

    def audio_due(self, t: float) -> float:
        """When the sound of t (the next AUDIO_PTIME_S of it: call once per frame, in order) leaves:
        AUDIO_LEAD_S before the frame of t, but the sound's delay rises only AUDIO_RISE a second
        (falls at once), so it is never later than that and its packets never pause for a rise."""
        assert self.start is not None
        step = AUDIO_RISE * AUDIO_PTIME_S
        self.audio_delay_s = min(self.delay_s - AUDIO_LEAD_S, self.audio_delay_s + step)
        return self.start + self.audio_delay_s + t


class SpeechBuffer:
    """The outgoing sound (OUT_RATE int16 mono), sample 0 at session time 0: written as the sound is
    pushed, read 20 ms at a time by the speech track when it is due."""

    def __init__(self) -> None:
        self._data = np.zeros(0, np.int16)
        self._base = 0  # sample index of _data[0]
        self._more = asyncio.Event()
        self.closed = False

    @property
    def end(self) -> int:
        return self._base + len(self._data)

    def append(self, pcm: np.ndarray) -> None:
        """Float samples in [-1, 1] at OUT_RATE."""
        if self.closed or not len(pcm):
            return
        ints = np.clip(np.round(pcm * 32767.0), -32768, 32767).astype(np.int16)
        self._data = np.concatenate([self._data, ints])
        self._more.set()

    def close(self) -> None:
        self.closed = True
        self._more.set()

    def silence(self) -> int:
        """Silence the sound not yet read (an interruption); the sample index from which it is silent."""
        self._data[:] = 0
        return self._base

    async def read(self, start: int, n: int) -> np.ndarray | None:
        """Samples start..start+n (waiting for them); None once closed and read to the end."""
        while self.end < start + n and not self.closed:
            self._more.clear()
            await self._more.wait()
        if start >= self.end:
            return None
        out = np.zeros(n, np.int16)
        got = self._data[max(0, start - self._base):start + n - self._base]
        out[:len(got)] = got
        drop = max(0, start + n - self._base)
        self._data, self._base = self._data[drop:], self._base + drop
        return out


class SpeechTrack(MediaStreamTrack):
    """The sound the face speaks, 20 ms frames released on the MediaClock.

    Once aiortc has made its Opus encoder (on the first frame, for a peer that negotiated Opus), the
    track encodes with it itself and hands the sender packets: handed a frame, aiortc measures its
    audio level in Python and hops to a thread to encode it, 50 times a second; handed a packet, it
    sends it. The packets and their timestamps are those aiortc would make (the same encoder); they
    carry no audio level, an optional RTP extension (RFC 6464)."""

    kind = "audio"

    def __init__(self, clock: MediaClock, buffer: SpeechBuffer) -> None:
        super().__init__()
        self._clock = clock
        self._buffer = buffer
        self._next = 0
        self.released_due: float | None = None  # when the last frame returned was due (see _on_clock)
        self.encoder: OpusEncoder | None = None  # aiortc's, once it has made it (see _OnClockSender)

    async def recv(self) -> AudioFrame | Packet:
        if self.readyState != "live":
            raise MediaStreamError
        await self._clock.started.wait()
        n = round(AUDIO_PTIME_S * OUT_RATE)
        due = self._clock.due(self._next * AUDIO_PTIME_S)  # what its sender report says
        wait = self._clock.audio_due(self._next * AUDIO_PTIME_S) - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        pcm = await self._buffer.read(self._next * n + OPUS_LOOKAHEAD, n)
        if pcm is None:
            self.stop()
            raise MediaStreamError
        frame = AudioFrame.from_ndarray(pcm[None, :], format="s16", layout="mono")
        frame.sample_rate = OUT_RATE
        frame.pts = self._next * n
        frame.time_base = fractions.Fraction(1, OUT_RATE)
        self._next += 1
        self.released_due = due
        return frame if self.encoder is None else _encoded(self.encoder, frame)


def _encoded(encoder: OpusEncoder, frame: AudioFrame) -> Packet:
    """`frame` as the Opus packet `encoder` makes of it, stamped as aiortc stamps it."""
    payloads, timestamp = encoder.encode(frame)
    packet = Packet(payloads[0])
    packet.pts, packet.time_base = timestamp, fractions.Fraction(1, OUT_RATE)
    return packet


@dataclass
class _Outgoing:
    time: float  # s, session time
    due: float  # when the sound that completes the frame arrived (time.monotonic)
    frame: VideoFrame


class AvatarTrack(MediaStreamTrack):
    """The rendered frames, each released on the MediaClock at its session time (90 kHz pts from
    it). A frame that is late goes as soon as it is made (the browser's jitter buffer absorbs a
    little); one overtaken by a newer frame already SKIP_LATE_S late is skipped, so a picture that
    fell behind (a stall) catches up at once."""

    kind = "video"

    def __init__(self, clock: MediaClock, on_release: Callable[[_Outgoing, float], None] | None = None) -> None:
        super().__init__()
        self._clock = clock
        self._queue: deque[_Outgoing] = deque()
        self._more = asyncio.Event()
        self._ended = False
        self._on_release = on_release
        self.skipped = 0
        self.released_due: float | None = None  # when the last frame returned was due (see _on_clock)

    def put(self, item: _Outgoing) -> None:
        self._queue.append(item)
        self._more.set()

    def end(self) -> None:
        self._ended = True
        self._more.set()

    @property
    def pending(self) -> int:
        return len(self._queue)

    async def recv(self) -> VideoFrame:
        if self.readyState != "live":
            raise MediaStreamError
        while not self._queue:
            if self._ended:
                self.stop()
                raise MediaStreamError
            self._more.clear()
            await self._more.wait()
        item = self._queue.popleft()
        while self._queue and self._clock.due(self._queue[0].time) + SKIP_LATE_S <= time.monotonic():
            item = self._queue.popleft()
            self.skipped += 1
        due = self._clock.due(item.time)
        wait = due - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        item.frame.pts = round(item.time * VIDEO_CLOCK)
        self.released_due = due
        item.frame.time_base = fractions.Fraction(1, VIDEO_CLOCK)
        if self._on_release is not None:
            self._on_release(item, time.monotonic())
        return item.frame


# -- one peer connection ------------------------------------------------------------------------------

FrameTap = Callable[["PeerSession", LiveFrame], None]  # sees every frame rendered (in the worker): the bench


class PeerSession:
    """One browser (or other peer): its RTCPeerConnection, Session, worker, Shedder and Recorder."""

    def __init__(self, pc: RTCPeerConnection, session: Session, worker: ThreadPoolExecutor, ctx: LiveContext,
                 shedder: Shedder, controls: Controls, on_closed: Callable[[PeerSession], None],
                 tap: FrameTap | None = None) -> None:
        config = ctx.config
        self.pc = pc
        self.session = session
        self.ctx = ctx
        self.shedder = shedder
        self.controls = controls
        self.clock = MediaClock(config.webrtc_delay_s, config.webrtc_min_delay_s)
        self.speech = SpeechBuffer()
        self.video = AvatarTrack(self.clock, self._released)
        self.audio = SpeechTrack(self.clock, self.speech)
        self.recorder: Recorder | None = None
        if config.record:
            rid, _ = ctx.recordings.new_id()
            self.recorder = Recorder(ctx.recordings.folder / f"rtc-{rid}", config.size, config.fps)
        self._worker = worker
        self._on_closed = on_closed
        self._tap = tap
        self._channel: RTCDataChannel | None = None
        self._early: list[dict[str, Any]] = []  # messages from before the data channel opened
        self._messages: asyncio.Queue[Any] = asyncio.Queue()
        self._pending: deque[tuple[np.ndarray, float]] = deque()  # (OUT_RATE samples, arrival)
        self._pending_n = 0
        self._arrived = asyncio.Event()
        self._last_sound = -np.inf
        self._in_sound = False
        self._has_voice = False
        self._input_samples = 0  # OUT_RATE samples received from the peer
        self._to16k: PcmResampler | None = None
        self._to48k: PcmResampler | None = None
        self._rate_in: int | None = None
        self._latencies: deque[tuple[float, float]] = deque()  # (when released, s after its sound came in)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._driver: asyncio.Task[None] | None = None
        self._end_requested = False
        self._finished = False
        self._closed = False
        self._unclaimed: Path | None = None

    # -- lifecycle ------------------------------------------------------------------------------------

    @staticmethod
    async def open(stored: StoredAvatar, offer: Offer, ctx: LiveContext, shedder: Shedder,
                   on_closed: Callable[[PeerSession], None], tap: FrameTap | None = None) -> PeerSession:
        """Answer the offer: a PeerSession whose `pc.localDescription` is the answer."""
        config = ctx.config
        # aiortc reads iceServers=None as "Google's public STUN server": an empty list means none.
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[
            RTCIceServer(s.urls, s.username, s.credential) for s in config.ice_servers]))
        worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="facetalk-rtc")
        peer: PeerSession | None = None
        try:
            session = await asyncio.get_running_loop().run_in_executor(
                worker, lambda: stored.avatar.stream(offer.controls, fps=config.fps))
            peer = PeerSession(pc, session, worker, ctx, shedder, offer.controls, on_closed, tap)
            pc.on("track", peer._on_track)  # before the offer is read: aiortc announces its tracks then
            pc.on("datachannel", peer._on_channel)
            pc.on("connectionstatechange", peer._on_state)
            try:
                await pc.setRemoteDescription(offer.description)
            except Exception as exc:  # aiortc raises ValueError, AssertionError, ... on SDP it cannot use
                raise ProtocolError(f"the offer is not SDP this server can answer ({clip(_reason(exc), 80, False)})") from None
            kinds = {t.kind for t in pc.getTransceivers()}
            if "video" not in kinds:
                raise ProtocolError("the offer must receive video: add a video transceiver "
                                    "(pc.addTransceiver('video', {direction: 'recvonly'})) before createOffer")
            for transceiver in pc.getTransceivers():
                if transceiver.kind == "video":
                    transceiver.setCodecPreferences(_vp8_first())
                    transceiver.direction = "sendonly"  # the server takes no picture: none is sent to it
            _on_clock(pc.addTrack(peer.video), peer.video)
            if "audio" in kinds:
                _on_clock(pc.addTrack(peer.audio), peer.audio)
            else:
                peer.speech.close()  # no audio to send back: keep none
            try:
                await pc.setLocalDescription(await pc.createAnswer())
            except Exception as exc:  # an offer aiortc read but cannot answer (no common codec, ...)
                raise ProtocolError(f"the offer cannot be answered ({clip(_reason(exc), 80, False)})") from None
            peer._spawn(peer._connect_timeout())
            peer._spawn(peer._serve_channel())
            return peer
        except BaseException:
            if peer is not None:
                await peer.close()
            else:
                await pc.close()
                worker.shutdown(wait=False)
            raise

    async def close(self) -> None:
        """Free everything; idempotent. An unfinished recording is thrown away."""
        if self._closed:
            return
        self._closed = True
        current = asyncio.current_task()
        for task in list(self._tasks) + ([self._driver] if self._driver else []):
            if task is not current:
                task.cancel()
        self.video.end()
        self.speech.close()
        with contextlib.suppress(Exception):
            await self.pc.close()
        self.ctx.admission.release(self.shedder)
        if self.recorder is not None:
            self._worker.submit(self.recorder.abort)
        if self._unclaimed is not None:
            self._worker.submit(remove_quietly, self._unclaimed)
        self._worker.shutdown(wait=False)
        self._on_closed(self)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _on_state(self) -> None:
        state = self.pc.connectionState
        if state == "connected" and self._driver is None and not self._closed:
            self.clock.begin(time.monotonic())
            self._driver = asyncio.ensure_future(self._drive())
        elif state in ("failed", "closed"):
            self._spawn(self.close())

    async def _connect_timeout(self) -> None:
        await asyncio.sleep(CONNECT_TIMEOUT_S)
        if self.clock.start is None:
            log.info("a WebRTC peer did not connect within %g s; its slot is freed", CONNECT_TIMEOUT_S)
            await self.close()

    # -- sound in ---------------------------------------------------------------------------------------

    def _on_track(self, track: MediaStreamTrack) -> None:
        if track.kind == "audio" and not self._has_voice:
            self._has_voice = True
            for transceiver in self.pc.getTransceivers():
                if transceiver.receiver.track is track:
                    _no_hold(transceiver.receiver)
            self._spawn(self._read_sound(track))
        else:  # a second voice, or a picture: read and dropped, so aiortc's queue of it stays empty
            self._spawn(_drain(track))

    async def _read_sound(self, track: MediaStreamTrack) -> None:
        """The peer's sound, mixed to mono, queued with its arrival time for the driver."""
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            if self._end_requested:
                continue
            pcm = _mono(frame)
            if frame.sample_rate != OUT_RATE:  # WebRTC's Opus decodes at 48 kHz: only other codecs land here
                if self._rate_in != frame.sample_rate:
                    self._rate_in, self._to48k = frame.sample_rate, PcmResampler(frame.sample_rate, OUT_RATE)
                pcm = self._to48k.feed(pcm) if self._to48k is not None else pcm
            self._pending.append((pcm, time.monotonic()))
            self._pending_n += len(pcm)
            while self._pending_n > MAX_PENDING_S * OUT_RATE:  # far behind: the oldest sound goes
                self._pending_n -= len(self._pending.popleft()[0])
            self._arrived.set()

    # -- the driver: sound (or silence) into the session, frames out ----------------------------------

    async def _drive(self) -> None:
        try:
            while not (self._end_requested and not self._pending):  # sound received before the end is pushed
                if not self._end_requested:
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(self._arrived.wait(), TICK_S)
                self._arrived.clear()
                now = time.monotonic()
                if self._pending:
                    if not self._in_sound:
                        self._in_sound = True
                        self._send({"sound": {"at": round(self.session.samples / SAMPLE_RATE, 4),
                                              "input": round(self._input_samples / OUT_RATE, 4)}})
                    parts, arrivals = [], []
                    while self._pending and sum(len(p) for p in parts) < MAX_PUSH_S * OUT_RATE:
                        pcm, arrived = self._pending.popleft()
                        self._pending_n -= len(pcm)
                        self._input_samples += len(pcm)
                        parts.append(pcm)
                        arrivals.append(arrived)
                    self._last_sound = now
                    if await self._push(parts, arrivals, 0):
                        break
                elif now - self._last_sound >= SILENCE_AFTER_S and not self._end_requested:
                    self._in_sound = False
                    behind = int(self.clock.elapsed(now) * SAMPLE_RATE) - self.session.samples
                    if behind >= MIN_SILENCE and await self._push([], [now], behind):
                        break
            await self._finish()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("a WebRTC session failed")
            self._send({"error": f"internal error in the live session ({type(exc).__name__}); please report it"})
            await self.close()

    async def _push(self, parts: list[np.ndarray], arrivals: list[float], silence: int) -> bool:
        """Push sound (OUT_RATE pieces) or `silence` samples of SAMPLE_RATE; hand the frames to the
        video track. True when the session was ended (length limit, or too far behind)."""
        config = self.ctx.config
        if parts:
            for pcm in parts:
                self.speech.append(pcm)
        else:
            self.speech.append(np.zeros(silence * OUT_RATE // SAMPLE_RATE, np.float32))
        ends, end = [], self.session.samples
        for pcm, arrived in zip(parts or [np.zeros(silence * OUT_RATE // SAMPLE_RATE)], arrivals):
            end += len(pcm) * SAMPLE_RATE // OUT_RATE
            ends.append((end, arrived))
        lag = time.monotonic() - arrivals[0]
        if lag > config.max_lag_s:
            log.warning("a WebRTC session fell %.1f s behind; ended", lag)
            self._send({"error": f"the server fell {lag:.1f} s behind this live session, more than the "
                                 f"{config.max_lag_s:g} s it allows; it was ended here (its recording is kept)"})
            return True
        frames, outgoing, pcm16 = await self._in_worker(self._render, parts, silence, ends)
        now = time.monotonic()
        for item in outgoing:
            self.shedder.sent(now - item.due, now)
            self.clock.adapt(self.clock.elapsed(now) - item.time)
            self.video.put(item)
        notice = self.shedder.update(now)
        if notice is not None:
            log.info("WebRTC session: %s", notice["degraded"]["reason"])
            self._send(notice)
        if self.recorder is not None:
            self._worker.submit(record_frames, self.recorder, pcm16, frames)
        if self.session.samples >= config.max_live_seconds * SAMPLE_RATE:
            self._send({"error": f"a live session streams at most {config.max_live_seconds / 60:g} min of audio; "
                                 "it was ended here (its recording is kept)"})
            return True
        return False

    def _render(self, parts: list[np.ndarray], silence: int,
                ends: list[tuple[int, float]]) -> tuple[list[LiveFrame], list[_Outgoing], np.ndarray]:
        """In the worker: resample, push (the Shedder choosing which frames to render), convert."""
        if parts:
            if self._to16k is None:
                self._to16k = PcmResampler(OUT_RATE, SAMPLE_RATE)
            pcm16 = self._to16k.feed(np.concatenate(parts))
        else:
            pcm16 = np.zeros(silence, np.float32)
        fps, shedder = self.session.fps, self.shedder

        def due(index: int) -> float:
            needed = (index + 1 + LOOKAHEAD_FRAMES) * SAMPLE_RATE / fps
            return next((d for e, d in ends if e >= needed - 0.5), ends[-1][1])

        frames = shed_push(self.session, pcm16, shedder, due)
        return frames, [self._outgoing(f, due(f.index)) for f in frames], pcm16

    def _outgoing(self, frame: LiveFrame, due: float) -> _Outgoing:
        if self._tap is not None:
            self._tap(self, frame)
        image, size = frame.image, self.shedder.current_size
        if size != image.shape[0]:
            image = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)
        return _Outgoing(frame.time, due, i420(image))

    def _released(self, item: _Outgoing, now: float) -> None:
        self._latencies.append((now, now - item.due))
        while self._latencies and self._latencies[0][0] < now - LATENCY_WINDOW_S:
            self._latencies.popleft()

    async def _finish(self) -> None:
        """The end: the last frames, the recording, the end message; the peer closes (or is closed)."""
        if self._finished:
            return
        self._finished = True
        frames = await self._in_worker(self.session.close)
        for frame in frames:
            self.video.put(await self._in_worker(self._outgoing, frame, time.monotonic()))
        self.video.end()
        self.speech.close()
        recording = None
        if self.recorder is not None:
            rid, path = self.ctx.recordings.new_id()
            recorder, self.recorder, self._unclaimed = self.recorder, None, path
            self._worker.submit(record_frames, recorder, None, frames)
            try:
                if await self._in_worker(recorder.finish, path, self.session.marks.metadata(), self.session.frames_out):
                    self.ctx.recordings.add(rid)
                    self._unclaimed = None
                    recording = f"/recordings/{rid}.mp4"
            except Exception as exc:
                log.exception("finishing a WebRTC recording failed")
                self._send({"error": f"the recording could not be written ({exc}); the stream itself is complete"})
        self._send({"end": True, "frames": self.session.frames_out, "dropped": self.session.dropped,
                    "skipped": self.video.skipped, "seconds": round(self.session.samples / SAMPLE_RATE, 3),
                    "recording": recording})
        self._spawn(self._close_later())

    async def _close_later(self) -> None:
        await asyncio.sleep(self.clock.delay_s + END_GRACE_S)
        await self.close()

    # -- the data channel -------------------------------------------------------------------------------

    def _on_channel(self, channel: RTCDataChannel) -> None:
        if self._channel is not None:
            return  # one control channel per connection; others are ignored
        self._channel = channel
        config = self.ctx.config
        early, self._early = self._early, []
        self._send({"fps": config.fps, "size": config.size, "sample_rate": SAMPLE_RATE,
                    "delay_ms": round(1000 * config.webrtc_delay_s), "controls": controls_json(self.controls)})
        for message in early:
            self._send(message)

        @channel.on("message")
        def on_message(message: Any) -> None:
            if self._messages.qsize() >= MAX_MESSAGES:
                self._send({"error": f"more than {MAX_MESSAGES} messages are waiting; this one was dropped"})
            else:
                self._messages.put_nowait(message)

    async def _serve_channel(self) -> None:
        """Answer the data channel's messages in order; send the server's latency every second."""
        while True:
            try:
                message = await asyncio.wait_for(self._messages.get(), STATS_EVERY_S)
            except asyncio.TimeoutError:
                self._send_stats()
                continue
            await self._on_message(message)

    async def _on_message(self, text: Any) -> None:
        if not isinstance(text, str):
            self._send({"error": "send text messages on the data channel: JSON control messages"})
            return
        try:
            message = parse_message(text)
            controls = updated_controls(self.controls, message["controls"]) if "controls" in message else None
        except ProtocolError as exc:
            self._send({"error": str(exc)})
            return
        if controls is not None and not self._finished:
            await self._in_worker(self.session.set_controls, controls)
            self.controls = controls
            self._send({"controls": controls_json(controls)})
        if message.get("type") == "interrupt" and not self._end_requested:
            await self._interrupt()
        if message.get("end") is True and not self._end_requested:
            self._end_requested = True
            self._arrived.set()
            if self._driver is None:  # never connected
                await self._finish()

    async def _interrupt(self) -> None:
        """Drop the sound received but not yet heard: not yet pushed, held back in the session
        (Session.interrupt), and pushed but not yet sent back. The frames already made still go:
        they show at most the clock's delay of lips closing on silence."""
        self._pending.clear()
        self._pending_n = 0
        await self._in_worker(self.session.interrupt)
        at = self.speech.silence() / OUT_RATE
        self._send({"interrupted": {"at": round(at, 4)}})

    def _send_stats(self) -> None:
        if self._latencies:
            ms = sorted(x for _, x in self._latencies)
            self._send({"stats": {"latency_ms": round(1000 * ms[len(ms) // 2]), "frames": self.session.frames_out,
                                  "skipped": self.video.skipped, "delay_ms": round(1000 * self.clock.delay_s)}})

    def _send(self, message: dict[str, Any]) -> None:
        """To the peer on the data channel; held (a few) until the channel opens."""
        channel = self._channel
        if channel is None or channel.readyState != "open":
            if len(self._early) < MAX_EARLY_MESSAGES:
                self._early.append(message)
            return
        with contextlib.suppress(Exception):
            channel.send(json.dumps(message))

    async def _in_worker(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._worker, fn, *args)


# -- all of them ------------------------------------------------------------------------------------------

class WebRTCHub:
    """The server's WebRTC sessions: answers offers (admitted as live sessions are), closes them all
    at shutdown."""

    def __init__(self, ctx: LiveContext, tap: FrameTap | None = None) -> None:
        self.ctx = ctx
        self.tap = tap  # a measuring hook (bench): sees every frame each session renders
        self.peers: set[PeerSession] = set()

    async def answer(self, stored: StoredAvatar, offer: Offer) -> PeerSession:
        """A new PeerSession answering `offer`; Busy when the server takes no more sessions,
        ProtocolError when the offer cannot be answered."""
        config = self.ctx.config
        shedder = Shedder(config.fps, config.size, config.frame_deadline_s)
        refusal = await self.ctx.admission.admit(shedder)
        if refusal is not None:
            raise Busy(refusal)
        try:
            peer = await PeerSession.open(stored, offer, self.ctx, shedder, self.peers.discard, self.tap)
        except BaseException:
            self.ctx.admission.release(shedder)
            raise
        self.peers.add(peer)
        return peer

    async def close_all(self) -> None:
        await asyncio.gather(*(peer.close() for peer in list(self.peers)), return_exceptions=True)


async def _drain(track: MediaStreamTrack) -> None:
    with contextlib.suppress(MediaStreamError):
        while True:
            await track.recv()


def _reason(exc: Exception) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


class InOrderPackets:
    """An audio 'jitter buffer' that holds nothing: each RTP packet of sound (one whole Opus frame)
    goes to the decoder as it arrives; one older than the last passed on (late, or a duplicate) is
    dropped. aiortc's own buffer holds 4 packets first (80 ms, for a player's sake) and then each
    packet until the next arrives (20 ms): the session needs no evenly paced sound, and those
    100 ms would be added to every frame's latency."""

    def __init__(self) -> None:
        self._last: int | None = None

    def add(self, packet: Any) -> tuple[bool, JitterFrame | None]:
        if self._last is not None and not uint16_gt(packet.sequence_number, self._last):
            return False, None
        self._last = packet.sequence_number
        return False, JitterFrame(data=packet._data, timestamp=packet.timestamp)


def _no_hold(receiver: Any) -> None:
    """Give an audio receiver an InOrderPackets buffer. (A private attribute of aiortc 1.x, which calls
    only its `add`: where it is missing, aiortc's buffer stays and only the latency suffers;
    tests/test_webrtc.py checks that it takes.)"""
    if hasattr(receiver, "_RTCRtpReceiver__jitter_buffer"):
        receiver._RTCRtpReceiver__jitter_buffer = InOrderPackets()


class _OnClockSender(RTCRtpSender):
    """An RTCRtpSender whose sender reports pair each RTP timestamp with the NTP time of its media
    clock (`MediaClock.due`) rather than with when its packet left. aiortc reads the wall clock after
    each packet is sent, so a video frame's pair was late by its encoding (~4 ms here, more on a busy
    machine) and a late frame's by its lateness: the browser, which lines the tracks up from these
    pairs, took the lips for later than they were. The released track says when its last frame was
    due; the NTP time aiortc records (its private `__ntp_timestamp`, set right after each packet of
    that frame is sent) is moved back by how long ago that was, or forward for the sound, which
    leaves AUDIO_LEAD_S early (its pair must still say its time on the media clock, or the browser
    would pair it with the frame of AUDIO_LEAD_S earlier, cancelling the lead). Its VP8 encoder,
    made by aiortc on the first frame, is a _SteppedVp8Encoder."""

    _released: MediaStreamTrack

    @property
    def _RTCRtpSender__ntp_timestamp(self) -> int:
        return self.__dict__.get("_ntp_on_clock", 0)

    @_RTCRtpSender__ntp_timestamp.setter
    def _RTCRtpSender__ntp_timestamp(self, ntp: int) -> None:
        due = getattr(self.__dict__.get("_released"), "released_due", None)
        if due is not None and ntp:
            ntp -= round((time.monotonic() - due) * 2**32)  # NTP: 32.32 fixed point seconds
        self.__dict__["_ntp_on_clock"] = ntp

    @property
    def _RTCRtpSender__encoder(self) -> Any:
        return self.__dict__.get("_stepped_encoder")

    @_RTCRtpSender__encoder.setter
    def _RTCRtpSender__encoder(self, encoder: Any) -> None:
        """aiortc makes its encoder on the first frame: a VP8 one is made a _SteppedVp8Encoder, an
        Opus one is handed to the SpeechTrack, which encodes with it from then on."""
        if type(encoder) is Vp8Encoder:
            encoder.__class__ = _SteppedVp8Encoder
        track = self.__dict__.get("_released")
        if type(encoder) is OpusEncoder and isinstance(track, SpeechTrack):
            track.encoder = encoder
        self.__dict__["_stepped_encoder"] = encoder


# The browser's bandwidth estimate (REMB) moves every second or so, and aiortc rebuilds the whole
# libvpx encoder on every move of more than 10 %: 16 rebuilds in a session's first 90 s, each a
# keyframe burst and a fresh set of encoder buffers (RSS rose 16-19 MB over 12 rebuilds, then held).
# Held to these steps (about 1.4x apart), the encoder is rebuilt only when the estimate crosses one.
BITRATE_STEPS = (250_000, 350_000, 500_000, 700_000, 1_000_000, 1_500_000)  # aiortc's range: 0.25-1.5 Mbit/s
STEP_UP_MARGIN = 1.1  # the estimate must clear the next step by this much before the encoder moves up


def bitrate_step(current: int, estimate: int) -> int:
    """The step to encode at, given the one in use and a new estimate: down at once to the highest
    step the estimate carries (the link cannot carry more), up only once it clears the next step by
    STEP_UP_MARGIN (an estimate hovering about a step does not rebuild the encoder every second)."""
    if estimate < current:
        return max((b for b in BITRATE_STEPS if b <= estimate), default=BITRATE_STEPS[0])
    return max((b for b in BITRATE_STEPS if b > current and estimate >= STEP_UP_MARGIN * b), default=current)


# aiortc's libvpx settings (aiortc.codecs.vpx.Vp8Encoder in 1.16), but for frames that are rendered,
# not filmed. On the demo's 512 px frames at 0.5 Mbit/s a frame took 2.9 ms to encode with aiortc's
# and 1.5 ms with these (this machine, quiet), at 38.1 dB PSNR instead of 37.5 (36.3 instead of 36.1
# at 0.25 Mbit/s; 39.9 instead of 38.6 at 1 Mbit/s):
VP8_RENDERED = {
    "noise-sensitivity": "0",  # aiortc: 4, libvpx's temporal denoiser, for a camera's noise: a rendered
                               # frame has none, so it only cost time and blurred detail
    "cpu-used": "-12",  # aiortc: -6; libvpx's realtime speed 12 of 16 (-16 fell to 36.0 dB at 0.5 Mbit/s)
}


def vp8_codec(width: int, height: int, bitrate: int) -> Any:
    """A libvpx encoder set up as aiortc sets up its own, with VP8_RENDERED."""
    codec = av.CodecContext.create("libvpx", "w")
    codec.width, codec.height = width, height
    codec.bit_rate = bitrate
    codec.pix_fmt = "yuv420p"
    codec.gop_size = 3000  # kf_max_dist
    codec.qmin, codec.qmax = 2, 56
    codec.options = {
        "bufsize": str(bitrate), "deadline": "realtime", "lag-in-frames": "0",
        "minrate": str(bitrate), "maxrate": str(bitrate),  # CBR
        "overshoot-pct": "15", "partitions": "0", "static-thresh": "1", "undershoot-pct": "100",
        **VP8_RENDERED}
    codec.thread_count = number_of_threads(width * height, os.cpu_count() or 1)
    return codec


class _SteppedVp8Encoder(Vp8Encoder):
    """aiortc's VP8 encoder with its target bitrate held to BITRATE_STEPS and libvpx set up for
    rendered frames (vp8_codec), which hands the heap the encoder it replaced freed back to the
    system (release_freed_heap) whenever it is rebuilt."""

    def encode(self, frame: Any, force_keyframe: bool = False) -> tuple[list[bytes], int]:
        before = self.codec
        if self._stale(frame):  # made here, aiortc's encode() keeps it: it fits the frame and the bitrate
            self.codec = vp8_codec(frame.width, frame.height, self.target_bitrate)
        out = super().encode(frame, force_keyframe)
        if before is not None and self.codec is not before:  # rebuilt (runs in aiortc's encoder thread)
            release_freed_heap()
        return out

    def _stale(self, frame: Any) -> bool:
        """aiortc's own test for rebuilding its encoder: none yet, a new size, or a bitrate moved by
        more than 10 %."""
        codec = self.codec
        return (codec is None or frame.width != codec.width or frame.height != codec.height
                or abs(self.target_bitrate - codec.bit_rate) / codec.bit_rate > 0.1)

    @property
    def target_bitrate(self) -> int:
        return self._Vp8Encoder__target_bitrate

    @target_bitrate.setter
    def target_bitrate(self, bitrate: int) -> None:
        self._Vp8Encoder__target_bitrate = bitrate_step(self._Vp8Encoder__target_bitrate, bitrate)


def release_freed_heap() -> None:
    """Give the heap glibc holds free back to the system (`malloc_trim`). A rebuilt libvpx encoder
    frees its predecessor's buffers, but glibc keeps the freed pages mapped, so the server's RSS
    stepped up a few MB with each rebuild and stayed there, though the memory in use was flat.
    A no-op where the C library is not glibc."""
    try:
        libc = ctypes.CDLL(None)
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return
    trim(0)


def _on_clock(sender: RTCRtpSender, track: MediaStreamTrack) -> None:
    """Make `sender`'s reports carry `track`'s media clock and its VP8 bitrate move in steps
    (_OnClockSender). (Private attributes of aiortc 1.x: where they are missing the reports keep the
    send time, a few ms late for video, and the encoder follows every estimate; tests/test_webrtc.py
    checks that it takes.)"""
    private = ("_RTCRtpSender__ntp_timestamp", "_RTCRtpSender__encoder")
    if type(sender) is RTCRtpSender and all(k in sender.__dict__ for k in private):
        ntp, encoder = (sender.__dict__.pop(k) for k in private)
        sender.__class__ = _OnClockSender
        sender.__dict__["_released"] = track
        sender._RTCRtpSender__ntp_timestamp = ntp
        sender._RTCRtpSender__encoder = encoder


def _vp8_first() -> list[Any]:
    """VP8 (libvpx realtime, cheap on a CPU) before H.264; their retransmission codecs kept."""
    codecs = RTCRtpSender.getCapabilities("video").codecs
    return ([c for c in codecs if c.mimeType.lower() == "video/vp8"]
            + [c for c in codecs if c.mimeType.lower() not in ("video/vp8",)])


def i420(image: np.ndarray) -> VideoFrame:
    """An RGB frame in the VP8 encoder's own format (I420, BT.601 limited range, as PyAV's reformat
    makes it), converted here in the session's worker rather than in aiortc's encoder thread.
    OpenCV converts a 512x512 frame in ~0.15 ms where PyAV's reformat (swscale) took ~2.3 ms; it
    takes only even sizes (a half-size frame of an odd half is left to PyAV)."""
    if image.shape[0] % 2 or image.shape[1] % 2:
        return VideoFrame.from_ndarray(image, format="rgb24").reformat(format="yuv420p")
    return VideoFrame.from_ndarray(cv2.cvtColor(image, cv2.COLOR_RGB2YUV_I420), format="yuv420p")


def _mono(frame: AudioFrame) -> np.ndarray:
    """A decoded audio frame as mono float32 in [-1, 1]."""
    x = frame.to_ndarray()
    scale = float(np.iinfo(x.dtype).max + 1) if np.issubdtype(x.dtype, np.integer) else 1.0
    channels = len(frame.layout.channels)
    x = x.reshape(channels, -1).mean(0) if frame.format.is_planar else x.reshape(-1, channels).mean(1)
    return (x / scale).astype(np.float32)
