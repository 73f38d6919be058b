"""A small aiortc client of `POST /avatars/{id}/webrtc`, for the tests, the bench and scripts.

It sends a voice as its audio track, in real time (20 ms frames at 48 kHz, as a browser would),
opens the control data channel, and keeps what comes back: the decoded video frames and speech with
their arrival times, and the server's data channel messages. With `wire=True` it also notes each RTP
packet as it arrives (before aiortc's jitter buffers, which hold audio for 4 packets and a video
frame until the next one begins): the bench measures latency and lip sync on the wire, as a browser
would receive them. With `decode=False` nothing is decoded (the bench's many clients share the
server's cores; what they measure on the wire needs no pictures): the packets are still received,
reported on and acknowledged as before (receiver reports, bandwidth estimates, NACKs), so the server
sees the same peer.
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
from aiortc.codecs.opus import OpusEncoder
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av import AudioFrame, Packet

RATE = 48000
PTIME_S = 0.02


class VoiceTrack(MediaStreamTrack):
    """A voice (float mono at 48 kHz) played in real time, then silence; `sent[k]` is when frame k
    (samples k*960..) was handed to the sender (time.monotonic).

    The voice is Opus-encoded up front, by aiortc's own encoder, into the very packets aiortc would
    make of it live, and handed to the sender as packets: a browser encodes on its own machine, and
    these clients share the server's cores (live encoding cost each one ~0.03 CPU-s a second: the
    encoder's thread hop, aiortc's audio level in Python, the encode). Silence is one silent packet,
    repeated; the packets carry no audio level (the server reads none)."""

    kind = "audio"

    def __init__(self, pcm: np.ndarray, silence_after: bool = True) -> None:
        super().__init__()
        self.pcm = (np.clip(pcm, -1, 1) * 32767).astype(np.int16)
        self.silence_after = silence_after
        self.sent: list[float] = []
        self._packets = opus_packets(self.pcm)
        self._silence = opus_packets(np.zeros(3 * int(PTIME_S * RATE), np.int16))[-1]
        self._start: float | None = None

    def cut(self) -> float:
        """Stop the voice here (silence follows); the seconds of it sent."""
        self.pcm = self.pcm[:len(self.sent) * int(PTIME_S * RATE)]
        self._packets = self._packets[:len(self.sent)]
        return len(self.pcm) / RATE

    @property
    def done(self) -> bool:
        return len(self.sent) * PTIME_S * RATE >= len(self.pcm)

    async def recv(self) -> Packet:
        if self.readyState != "live":
            raise MediaStreamError
        n = int(PTIME_S * RATE)
        k = len(self.sent)
        if self._start is None:
            self._start = time.monotonic()
        wait = self._start + k * PTIME_S - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        if k >= len(self._packets) and not self.silence_after:
            self.stop()
            raise MediaStreamError
        packet = Packet(self._packets[k] if k < len(self._packets) else self._silence)
        packet.pts = k * n
        packet.time_base = fractions.Fraction(1, RATE)
        self.sent.append(time.monotonic())
        return packet


def opus_packets(pcm: np.ndarray) -> list[bytes]:
    """int16 mono at RATE as the 20 ms Opus packets aiortc's encoder makes of it (one a frame, the last
    padded with silence)."""
    encoder, n = OpusEncoder(), int(PTIME_S * RATE)
    out: list[bytes] = []
    for k in range(-(-len(pcm) // n)):
        chunk = pcm[k * n:(k + 1) * n]
        frame = AudioFrame.from_ndarray(np.pad(chunk, (0, n - len(chunk)))[None, :], format="s16", layout="mono")
        frame.sample_rate, frame.pts, frame.time_base = RATE, k * n, fractions.Fraction(1, RATE)
        payloads, _ = encoder.encode(frame)
        out += payloads
    return out


@dataclass
class Received:
    """What came back, with arrival times (time.monotonic)."""

    frames: list[tuple[int, float, np.ndarray]] = field(default_factory=list)  # (pts 90 kHz from 0, when, RGB)
    audio: list[tuple[int, float, np.ndarray]] = field(default_factory=list)  # (pts 48 kHz from 0, when, mono int16)
    messages: list[dict[str, Any]] = field(default_factory=list)
    wire: list[tuple[str, int, float, int]] = field(default_factory=list)  # (kind, RTP timestamp, when, bytes)

    def first(self, key: str) -> dict[str, Any] | None:
        return next((m for m in self.messages if key in m), None)


class WebRTCClient:
    """One connection: `await connect()`, `send(...)` controls, `await end()`, `await close()`."""

    def __init__(self, base_url: str, avatar: str = "default", voice: np.ndarray | None = None,
                 controls: dict[str, Any] | None = None, wire: bool = False, decode: bool = True) -> None:
        self.url = f"{base_url.rstrip('/')}/avatars/{avatar}/webrtc"
        self.voice = VoiceTrack(voice if voice is not None else np.zeros(0, np.float32))
        self.controls = controls
        self.received = Received()
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.channel = self.pc.createDataChannel("control")
        self._wire = wire
        self._decode = decode
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
        for transceiver in self.pc.getTransceivers():
            if self._wire:
                _note_arrivals(transceiver.receiver, transceiver.kind, self.received.wire)
            if not self._decode:
                _undecoded(transceiver.receiver)
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
                self.received.frames.append((int(frame.pts), now, frame.to_ndarray(format="rgb24")))
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


class _Dropped:
    """A receiver's jitter buffer that passes nothing on to the decoder: with it, a receiver still
    counts, reports and acknowledges its packets, but decodes none."""

    def add(self, packet: Any) -> tuple[bool, None]:
        return False, None


def _undecoded(receiver: Any) -> None:
    """Keep `receiver` from decoding (aiortc 1.x's private jitter buffer, of which it calls only `add`:
    where it is missing the client decodes as before, at its cost; tests/test_webrtc.py checks that it
    takes)."""
    if hasattr(receiver, "_RTCRtpReceiver__jitter_buffer"):
        receiver._RTCRtpReceiver__jitter_buffer = _Dropped()
