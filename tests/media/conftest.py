"""Synthetic media for the media tests: every file is made here, in tmp_path, in milliseconds."""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

TONE_HZ = 440.0


def tone(seconds: float, rate: int, channels: int = 1, amplitude: float = 0.5) -> np.ndarray:
    """A 440 Hz tone plus a quiet chirp, (channels, n) float32: easy to recognise after lossy codecs."""
    t = np.arange(int(round(seconds * rate))) / rate
    x = amplitude * np.sin(2 * np.pi * TONE_HZ * t) + 0.1 * np.sin(2 * np.pi * (100 * t + 200 * t**2))
    x = np.clip(x, -1, 1).astype(np.float32)
    return np.ascontiguousarray(np.tile(x[None, :], (channels, 1)))


def encoder_available(codec: str) -> bool:
    try:
        av.codec.Codec(codec, "w")
    except Exception:
        return False
    return True


def encode_media(
    path: Path,
    *,
    audio: np.ndarray | None = None,
    rate: int = 16000,
    audio_codec: str = "pcm_s16le",
    video_frames: int = 0,
    video_codec: str = "libx264",
    size: tuple[int, int] = (64, 48),
    fps: int = 25,
    format: str | None = None,
    audio_options: dict[str, str] | None = None,
) -> Path:
    """Write a file with an optional video track (moving gradient) and an optional audio track."""
    with av.open(str(path), "w", format=format) as out:
        vstream = None
        if video_frames:
            vstream = out.add_stream(video_codec, rate=fps)
            vstream.width, vstream.height = size
            vstream.pix_fmt = "yuv420p"
        astream = None
        if audio is not None:
            layout = "mono" if audio.shape[0] == 1 else "stereo"
            astream = out.add_stream(audio_codec, rate=rate, layout=layout, options=audio_options or {})
        if vstream is not None:
            w, h = size
            for i in range(video_frames):
                img = np.zeros((h, w, 3), np.uint8)
                img[..., 0] = np.linspace(0, 255, w, dtype=np.uint8)[None, :]
                img[..., 1] = (i * 7) % 256
                frame = av.VideoFrame.from_ndarray(img, format="rgb24")
                frame.pts = i
                for packet in vstream.encode(frame):
                    out.mux(packet)
            for packet in vstream.encode(None):
                out.mux(packet)
        if astream is not None:
            assert audio is not None
            step = 4096
            for start in range(0, audio.shape[1], step):
                block = np.ascontiguousarray(audio[:, start : start + step])
                frame = av.AudioFrame.from_ndarray(block, format="fltp", layout=astream.layout.name)
                frame.sample_rate = rate
                frame.pts = start
                frame.time_base = Fraction(1, rate)
                for packet in astream.encode(frame):
                    out.mux(packet)
            for packet in astream.encode(None):
                out.mux(packet)
    return path


@pytest.fixture
def make_media(tmp_path: Path) -> Callable[..., Path]:
    """``make_media(name, seconds=s, channels=c, **encode_media_kwargs)`` -> a fresh file in tmp_path.

    With ``seconds`` the audio track is :func:`tone` at ``rate``; pass ``audio=`` for your own.
    """

    def make(name: str, seconds: float | None = None, channels: int = 1, **kwargs: object) -> Path:
        if seconds is not None:
            kwargs["audio"] = tone(seconds, int(kwargs.get("rate", 16000)), channels)  # type: ignore[arg-type]
        return encode_media(tmp_path / name, **kwargs)  # type: ignore[arg-type]

    return make


@pytest.fixture
def make_tone() -> Callable[..., np.ndarray]:
    """The :func:`tone` generator, for tests that compare against the exact signal."""
    return tone


@pytest.fixture
def has_encoder() -> Callable[[str], bool]:
    return encoder_available
