"""Bookkeeping an avatar service needs between a framework's audio and the live session's frames.

Frameworks hand over speech at their own rate, in chunks of any size and faster than real time,
and play it back themselves; frames must go out each with the exact piece of that speech it shows.
Two small pieces, free of any framework:

- `SpeechSegment`: one run of speech at its original rate, placed on the session's frame grid
  (it starts on a frame boundary), cut back into per-frame slices without resampling, so the slices
  of a segment are contiguous and add up to exactly what came in.
- `PlayoutClock`: where playback stands on the session's frame grid, so silence is pushed while
  nobody speaks at the pace the viewer watches, not faster (which would queue idle frames behind
  speech still playing) and not slower (a frozen face).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable


def frame_boundary(frame: int, rate: float, fps: float) -> int:
    """The first sample of `frame` at `rate` (frame i holds samples [boundary(i), boundary(i + 1)))."""
    return round(frame * rate / fps)


class SpeechSegment:
    """Speech that starts at frame `start` of a session, kept at its own rate and channel count.

    `add` appends int16 interleaved bytes; `slice(i)` is the audio frame i of the session shows
    (empty for frames outside the segment); `frames_needed` is how many frames cover it all.
    Slices already taken are released, so a long turn holds only what is not yet shown.
    """

    def __init__(self, start: int, rate: int, channels: int, fps: float) -> None:
        if rate <= 0 or channels <= 0:
            raise ValueError(f"expected a positive rate and channel count, got {rate} Hz, {channels} channels")
        self.start = start
        self.rate = rate
        self.channels = channels
        self.fps = fps
        self.samples = 0  # per channel, added so far
        self._buf = bytearray()
        self._base = 0  # sample index of _buf[0]

    @property
    def frames_needed(self) -> int:
        """Frames from `start` that together hold every sample added so far."""
        return math.ceil(self.samples * self.fps / self.rate - 1e-9)

    def add(self, audio: bytes) -> None:
        width = 2 * self.channels
        if len(audio) % width:
            raise ValueError(f"expected whole int16 samples of {self.channels} channel(s), got {len(audio)} bytes")
        self._buf += audio
        self.samples += len(audio) // width

    def slice(self, frame: int) -> bytes:
        """The bytes of session frame `frame`; earlier frames' bytes are released."""
        k = frame - self.start
        if k < 0:
            return b""
        lo = max(frame_boundary(k, self.rate, self.fps), self._base)
        hi = min(frame_boundary(k + 1, self.rate, self.fps), self.samples)
        if hi <= lo:
            return b""
        width = 2 * self.channels
        out = bytes(self._buf[(lo - self._base) * width:(hi - self._base) * width])
        del self._buf[:(hi - self._base) * width]
        self._base = hi
        return out


class PlayoutClock:
    """Which session frame the viewer sees now: frame `anchor_frame` was on screen at `anchor_time`
    and one more follows every 1/fps s. `now` is injectable (tests, simulated time)."""

    def __init__(self, fps: float, now: Callable[[], float] = time.monotonic) -> None:
        self.fps = fps
        self.now = now
        self.anchor_frame = 0
        self.anchor_time = now()

    def anchor(self, frame: int) -> None:
        """Frame `frame` is on screen now (playback restarted: start, interruption, a stall)."""
        self.anchor_frame = frame
        self.anchor_time = self.now()

    def due(self) -> int:
        """The frame on screen now."""
        return self.anchor_frame + math.floor((self.now() - self.anchor_time) * self.fps + 1e-9)

    def seconds_until(self, frame: int) -> float:
        """Seconds until `frame` is on screen (0 if it already is or was)."""
        return max(0.0, self.anchor_time + (frame - self.anchor_frame) / self.fps - self.now())
