"""Causal building blocks of the motion layers: followers and peak pickers that carry their state
from one chunk of frames to the next, so a live stream (frames a few at a time) and a whole file
(all frames at once) give the same motion.
"""

from __future__ import annotations

import numpy as np


class Follower:
    """One-pole smoothing with separate rise and fall time constants (muscles contract faster
    than they release)."""

    def __init__(self, fps: float, attack_s: float, release_s: float, start: float = 0.0) -> None:
        self.up = 1.0 - np.exp(-1.0 / (attack_s * fps))
        self.down = 1.0 - np.exp(-1.0 / (release_s * fps))
        self.y = start

    def run(self, x: np.ndarray) -> np.ndarray:
        out = np.empty(len(x))
        y, up, down = self.y, self.up, self.down
        for i, v in enumerate(x):
            y += (up if v > y else down) * (v - y)
            out[i] = y
        self.y = y
        return out


class PeakPicker:
    """Local maxima of a series at least `height` high and `min_gap` frames apart, found with one
    frame of lookahead: `run(x, next_value)` takes a chunk and the value that follows it."""

    def __init__(self, height: float, min_gap: int) -> None:
        self.height, self.min_gap = height, min_gap
        self.prev = -np.inf  # the value before the current chunk
        self.frame = 0  # index of the chunk's first frame in the whole series
        self.last = -(10**9)  # frame of the last peak

    def run(self, x: np.ndarray, next_value: float) -> list[tuple[int, float]]:
        """(index within the chunk, value) of the peaks in it."""
        peaks = []
        ext = np.concatenate([[self.prev], x, [next_value]])
        for i in range(len(x)):
            v = ext[i + 1]
            frame = self.frame + i
            if v >= self.height and v > ext[i] and v >= ext[i + 2] and frame - self.last >= self.min_gap:
                peaks.append((i, float(v)))
                self.last = frame
        if len(x):
            self.prev = float(x[-1])
        self.frame += len(x)
        return peaks


class Pending:
    """Shapes that started in the past and still play out (nods, brow raises): added into a
    buffer that rolls forward with the frames."""

    def __init__(self) -> None:
        self.buf = np.zeros(0)

    def add(self, at: int, shape: np.ndarray, combine=np.add) -> None:
        """Lay `shape` from frame `at` (relative to the next frame to take)."""
        need = at + len(shape)
        if need > len(self.buf):
            self.buf = np.pad(self.buf, (0, need - len(self.buf)))
        self.buf[at:need] = combine(self.buf[at:need], shape)

    def take(self, n: int) -> np.ndarray:
        out = np.zeros(n)
        k = min(n, len(self.buf))
        out[:k] = self.buf[:k]
        self.buf = self.buf[k:]
        return out


class Phrases:
    """Phrase starts (speech after a pause of at least `pause_s`) and ends (speech followed by
    `pause_s` of silence), frame by frame from the voice activity. Causal: a start is known at its
    first voiced frame, an end once the pause has lasted `pause_s`."""

    def __init__(self, fps: float, pause_s: float = 0.3) -> None:
        self.fps = fps
        self.need = max(1, int(round(pause_s * fps)))
        self.quiet = 10**9  # frames of silence so far (the stream starts in a long pause)
        self.speaking = False  # inside a phrase

    def run(self, active: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(starts, ends) over the chunk's frames: `starts` holds the length (s) of the pause before
        each phrase start and 0 elsewhere (so it reads as a boolean too), `ends` is boolean."""
        starts, ends = np.zeros(len(active)), np.zeros(len(active), bool)
        for i, a in enumerate(active):
            if a > 0.5:
                if not self.speaking and self.quiet >= self.need:
                    starts[i] = min(self.quiet, 10**6) / self.fps
                    self.speaking = True
                self.quiet = 0
            else:
                self.quiet += 1
                if self.speaking and self.quiet == self.need:
                    ends[i], self.speaking = True, False
        return starts, ends


class TimedDraws:
    """Random numbers tied to time, not to events: `at(frame)` gives the draws of the time bucket
    holding that frame (`size` uniform 0..1 values, the same for every frame of the bucket).

    An event that a live stream detects a frame earlier or later than the file render (its
    running estimates differ a little) then still gets the same draw, and the stream's motion
    stays that of the file."""

    def __init__(self, rng: np.random.Generator, frames_per_bucket: int, size: int = 1) -> None:
        self.rng, self.every, self.size = rng, max(1, frames_per_bucket), size
        self.bucket, self.value = -1, np.zeros(size)

    def at(self, frame: int) -> np.ndarray:
        b = frame // self.every
        while self.bucket < b:
            self.value = self.rng.random(self.size)
            self.bucket += 1
        return self.value
