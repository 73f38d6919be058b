"""Small readers shared by the end-to-end tests."""

from __future__ import annotations

import wave
from pathlib import Path

import av
import numpy as np


def decoded_frames(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


def wav_seconds(path: Path) -> float:
    with wave.open(str(path)) as w:
        return w.getnframes() / w.getframerate()


def corrupt_middle(path: Path, size: int = 3000) -> Path:
    """Overwrite `size` bytes in the middle of a media file with noise (a damaged download)."""
    data = bytearray(path.read_bytes())
    mid = len(data) // 2
    data[mid : mid + size] = np.random.default_rng(1).integers(0, 256, size, dtype=np.uint8).tobytes()
    path.write_bytes(bytes(data))
    return path
