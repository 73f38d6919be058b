"""The server's settings: one frozen dataclass, the single source of its defaults and limits.

Every limit exists to keep a public-facing process bounded: memory (avatars, frames in flight),
disk (uploads, recordings) and CPU (live sessions, renders at once).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

MB = 1 << 20


@dataclass(frozen=True)
class IceServer:
    """A STUN or TURN server for WebRTC, as browsers' RTCIceServer: needed only where the server
    and its clients cannot reach each other directly (NAT), e.g. Debian's coturn."""

    urls: str  # "stun:host:3478" or "turn:host:3478?transport=udp"
    username: str | None = None
    credential: str | None = None


@dataclass(frozen=True)
class ServerConfig:
    """Limits and behaviour of `facetalk serve`.

    max_sessions: live sessions at once; more are refused. None (the default): as many as the server
        measured it can serve in real time (stream.capacity: a probe of a second, at start-up).
    headroom: the share of the measured throughput the admitted sessions may fill (the rest is slack
        for bursts, sending and the machine's other work).
    frame_deadline_s: a live frame later than this after its sound arrived is dropped (unless it is
        the newest), and a session whose frames keep being late or dropped steps down: a lower frame
        rate, then smaller frames (stream.shedding); the client is told with `{"degraded"}`.
    max_lag_s: a live session still further behind than this (even when shedding) is ended.
    max_avatars: uploaded photos kept analysed (LRU); the built-in portrait is kept besides.
    max_photo_bytes, max_audio_bytes: upload sizes, refused with 413 beyond.
    max_render_seconds: longest audio `POST /avatars/{id}/generate` renders.
    max_renders: file renders at once (each uses both cores); more wait their turn.
    max_live_seconds: audio one live session may stream; the session ends (recording kept) after it.
    idle_timeout_s: a live client silent for this long is disconnected, freeing its slot.
    record: keep each live session's sound and frames for `GET /recordings/{id}.mp4`.
    max_recordings, recording_ttl_s: finished recordings kept; each is deleted after its first
        download or after recording_ttl_s, whichever comes first.
    header_timeout_s: a connection's request line and headers must all arrive within this time (after
        it opens, or after the previous response); else it is closed.
    body_timeout_s, min_upload_rate: each part of a request body must arrive within body_timeout_s,
        and the body must average min_upload_rate bytes/s after the first body_timeout_s; else 408
        and the connection is closed (a stalled or trickling client cannot hold it for ever).
    warm: analyse the built-in portrait and run a throw-away session at start-up, so the first
        user's first frame does not pay for loading MediaPipe and the phone recogniser.
    workdir: where uploads, renders and recordings live while needed (default: a new temp folder,
        removed at shutdown).
    webrtc_delay_s, webrtc_min_delay_s: a WebRTC session's frames leave this long after the
        session's clock, their sound a little earlier (stream.webrtc): time for the frame of
        lookahead, the render and jitter. It starts at webrtc_delay_s and follows what the frames
        need (never below webrtc_min_delay_s); a frame later than that goes as soon as it is made.
    ice_servers: STUN/TURN servers for WebRTC, used by the server and offered to the page; none is
        needed on one machine or a LAN, a TURN server behind NAT.
    """

    size: int = 512
    fps: float = 25.0
    max_sessions: int | None = None
    headroom: float = 0.75
    frame_deadline_s: float = 0.08
    max_lag_s: float = 3.0
    max_avatars: int = 16
    max_photo_bytes: int = 15 * MB
    max_audio_bytes: int = 50 * MB
    max_render_seconds: float = 600.0
    max_renders: int = 2
    max_live_seconds: float = 1800.0
    idle_timeout_s: float = 60.0
    record: bool = True
    max_recordings: int = 8
    recording_ttl_s: float = 600.0
    header_timeout_s: float = 10.0
    body_timeout_s: float = 15.0
    min_upload_rate: float = 1024.0
    warm: bool = True
    workdir: Path | None = None
    webrtc_delay_s: float = 0.12
    webrtc_min_delay_s: float = 0.04
    ice_servers: tuple[IceServer, ...] = ()

    def __post_init__(self) -> None:
        if self.max_sessions is not None and self.max_sessions < 1:
            raise ValueError(f"max_sessions must be at least 1, got {self.max_sessions}")
        if not 0 < self.headroom <= 1:
            raise ValueError(f"headroom must be within (0, 1], got {self.headroom}")
        for name in ("max_avatars", "max_renders", "max_recordings"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        for name in ("max_photo_bytes", "max_audio_bytes", "max_render_seconds", "max_live_seconds",
                     "idle_timeout_s", "recording_ttl_s", "header_timeout_s", "body_timeout_s",
                     "min_upload_rate", "frame_deadline_s", "max_lag_s", "webrtc_delay_s",
                     "webrtc_min_delay_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
