"""A small aiortc client of `POST /avatars/{id}/webrtc`, for the tests, the bench and scripts.

It sends a voice as its audio track, in real time (20 ms frames at 48 kHz, as a browser would),
opens the control data channel, and keeps what comes back: the decoded video frames and speech with
their arrival times, and the server's data channel messages. With `wire=True` it also notes each RTP
packet as it arrives (before aiortc's jitter buffers, which hold audio for 4 packets and a video
frame until the next one begins): the bench measures latency and lip sync on the wire, as a browser
would receive them.
"""

from __future__ import annotations

import asyncio
import fractions
import json
import time
import urllib.request
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av import AudioFrame

RATE = 48000
PTIME_S = 0.02


class VoiceTrack(MediaStreamTrack):
    """A voice (float mono at 48 kHz) played in real time, then silence; `sent[k]` is when frame k
    (samples k*960..) was handed to the encoder (time.monotonic)."""

    kind = "audio"

    def __init__(self, pcm: np.ndarray, silence_after: bool = True) -> None:
        super().__init__()
        self.pcm = (np.clip(pcm, -1, 1) * 32767).astype(np.int16)
        self.silence_after = silence_after
        self.sent: list[float] = []
        self._start: float | None = None

    def cut(self) -> float:
        """Stop the voice here (silence follows); the seconds of it sent."""
        self.pcm = self.pcm[:len(self.sent) * int(PTIME_S * RATE)]
        return len(self.pcm) / RATE

    @property
    def done(self) -> bool:
        return len(self.sent) * PTIME_S * RATE >= len(self.pcm)

    async def recv(self) -> AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        n = int(PTIME_S * RATE)
        k = len(self.sent)
        if self._start is None:
            self._start = time.monotonic()
        wait = self._start + k * PTIME_S - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        chunk = self.pcm[k * n:(k + 1) * n]
        if len(chunk) < n:
            if not self.silence_after and not len(chunk):
                self.stop()
                raise MediaStreamError
            chunk = np.concatenate([chunk, np.zeros(n - len(chunk), np.int16)])
        frame = AudioFrame.from_ndarray(chunk[None, :], format="s16", layout="mono")
        frame.sample_rate = RATE
        frame.pts = k * n
        frame.time_base = fractions.Fraction(1, RATE)
        self.sent.append(time.monotonic())
        return frame


@dataclass
class Received:
    """What came back, with arrival times (time.monotonic)."""

    frames: list[tuple[int, float, np.ndarray]] = field(default_factory=list)  # (pts 90 kHz from 0, when, RGB)
    audio: list[tuple[int, float, np.ndarray]] = field(default_factory=list)  # (pts 48 kHz from 0, when, mono int16)
    messages: list[dict[str, Any]] = field(default_factory=list)
    wire: list[tuple[str, int, float, int]] = field(default_factory=list)  # (kind, RTP timestamp, when, bytes)
    keep_images: bool = True

    def first(self, key: str) -> dict[str, Any] | None:
        return next((m for m in self.messages if key in m), None)


class WebRTCClient:
    """One connection: `await connect()`, `send(...)` controls, `await end()`, `await close()`."""

    def __init__(self, base_url: str, avatar: str = "default", voice: np.ndarray | None = None,
                 controls: dict[str, Any] | None = None, wire: bool = False, keep_images: bool = True) -> None:
        self.url = f"{base_url.rstrip('/')}/avatars/{avatar}/webrtc"
        self.voice = VoiceTrack(voice if voice is not None else np.zeros(0, np.float32))
        self.controls = controls
        self.received = Received(keep_images=keep_images)
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.channel = self.pc.createDataChannel("control")
        self._wire = wire
        self._tasks: list[asyncio.Task[None]] = []
        self._opened = asyncio.Event()
        self._ended = asyncio.Event()
        self._message = asyncio.Event()

    async def connect(self, timeout_s: float = 60.0) -> None:
        """Offer, post, answer; returns once the data channel is open. HTTPError for a refusal."""
        self.pc.addTrack(self.voice)
        self.pc.addTransceiver("video", direction="recvonly")

        @self.pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            self._tasks.append(asyncio.ensure_future(self._read(track)))

        @self.channel.on("open")
        def on_open() -> None:
            self._opened.set()

        @self.channel.on("message")
        def on_message(text: str) -> None:
            message = json.loads(text)
            self.received.messages.append(message)
            self._message.set()
            if message.get("end"):
                self._ended.set()

        await self.pc.setLocalDescription(await self.pc.createOffer())
        body = {"sdp": self.pc.localDescription.sdp, "type": "offer"}
        if self.controls is not None:
            body["controls"] = self.controls
        answer = await asyncio.to_thread(post_json, self.url, body)
        if self._wire:
            for transceiver in self.pc.getTransceivers():
                _note_arrivals(transceiver.receiver, transceiver.kind, self.received.wire)
        await self.pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], answer["type"]))
        await asyncio.wait_for(self._opened.wait(), timeout_s)

    def send(self, message: dict[str, Any]) -> None:
        self.channel.send(json.dumps(message))

    async def wait_for(self, predicate: Any, timeout_s: float = 30.0) -> None:
        """Until `predicate(self.received)` holds."""
        async def loop() -> None:
            while not predicate(self.received):
                self._message.clear()
                await asyncio.wait([asyncio.ensure_future(self._message.wait())], timeout=0.05)
        await asyncio.wait_for(loop(), timeout_s)

    async def end(self, timeout_s: float = 60.0) -> dict[str, Any]:
        """Ask for the end; the server's end message once the last frames have come."""
        self.send({"end": True})
        await asyncio.wait_for(self._ended.wait(), timeout_s)
        end = self.received.first("end")
        assert end is not None
        return end

    async def close(self) -> None:
        await self.pc.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _read(self, track: MediaStreamTrack) -> None:
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            now = time.monotonic()
            if track.kind == "video":
                image = frame.to_ndarray(format="rgb24") if self.received.keep_images else np.zeros(0, np.uint8)
                self.received.frames.append((int(frame.pts), now, image))
            else:
                x = frame.to_ndarray().reshape(-1, len(frame.layout.channels)).mean(1).astype(np.int16)
                self.received.audio.append((int(frame.pts), now, x))


def post_json(url: str, body: dict[str, Any], timeout_s: float = 60.0) -> dict[str, Any]:
    request = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout_s) as r:
        return json.loads(r.read())


def _note_arrivals(receiver: Any, kind: str, into: list[tuple[str, int, float, int]]) -> None:
    """Note each RTP packet's arrival (measurement only: wraps the receiver's packet handler)."""
    handle = receiver._handle_rtp_packet

    async def noted(packet: Any, arrival_time_ms: int) -> None:
        into.append((kind, packet.timestamp, time.monotonic(), len(packet.payload)))
        await handle(packet, arrival_time_ms)

    receiver._handle_rtp_packet = noted
