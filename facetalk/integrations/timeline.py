"""Where playback stands on a live session's frame grid, for an avatar service in a framework.

Frameworks hand over speech faster than real time and play it back themselves. While nobody speaks,
silence must go into the session at the pace the viewer watches: not faster (idle frames would queue
behind speech still playing) and not slower (a frozen face). `PlayoutClock` says which frame is on
screen now; speech rendered ahead simply puts the session ahead of it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable


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
