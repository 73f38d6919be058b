"""Keeping an admitted live session live when the server falls behind: drop, then lower, then say so.

A frame is *due* when the sound that completes it (its own and the frame of lookahead after it)
has arrived, or, for sound sent ahead of real time, when that sound would have been spoken; its
*lateness* is the time from then until it is sent. A server short of CPU (a noisy machine, a file
render, more sessions than it measured) would otherwise make every frame later than the one before
(the backlog of issue 15: 17 s after 3 minutes). Instead, per session:

1. **Drop late frames.** A frame that would go out more than `deadline_s` after it is due is not
   rendered, unless it is the newest one the audio at hand completes: the client always gets the
   freshest picture, and a session that fell behind catches up at once (motion is still made for
   every frame, so the face moves on as if nothing was dropped; frame indices and times stay those
   of the audio clock, so the client keeps sound and picture in step).
2. **Lower the frame rate, then the frame size**, one step at a time (STEPS), while frames keep
   being dropped or sent late: 25 -> 12.5 fps, then frames sent at half size (a quarter of the
   bytes: a slow link is a cause too), then 8.3 fps. A step is held for at least HOLD_S.
3. **Come back** one step after `recover_s` without late frames (5 s at first, doubling each time a
   step back up had to be undone, up to 60 s), so a session does not flap.

Each change is told to the client as `{"degraded": {...}}` (Shedder.notice). The server ends a
session still further behind than `ServerConfig.max_lag_s` (live.py): latency is bounded either way.
Not thread-safe by itself: one session's worker and event loop call it in turn, never at once.
"""

from __future__ import annotations

import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from facetalk.stream.session import LiveFrame, Session


@dataclass(frozen=True)
class Step:
    stride: int  # every stride-th frame of the audio clock is rendered
    scale: int  # frames are sent at size // scale


STEPS = (Step(1, 1), Step(2, 1), Step(2, 2), Step(3, 2))
WINDOW_S = 2.0  # lateness and drops are judged over this much of the recent past
HOLD_S = 1.0  # at least this long between two steps down (the last one must take effect first)
SETTLE_S = 0.5  # frames in flight at a step are not held against the new one
MIN_EVENTS = 5  # frames sent or dropped late in the window before a step is taken
LATE_SHARE = 0.1  # frames dropped late (of all judged) in the window that call for the next step
RECOVER_S = 5.0  # calm time before a step back up; doubled after each failed one
RECOVER_MAX_S = 60.0
STABLE_S = 30.0  # a step up that held this long resets the back-off
NOTICE_EVERY_S = 5.0  # frames dropped at an unchanged step are reported at most this often


class Shedder:
    """One session's load-shedding state: which frames to render, and when to step down or up."""

    def __init__(self, fps: float, size: int, deadline_s: float, frame_cost_s: float = 0.02,
                 rng: random.Random | None = None) -> None:
        self.fps = fps
        self.size = size
        self.deadline_s = deadline_s
        self.frame_cost_s = frame_cost_s  # running estimate of one frame's render + encode time
        self.level = 0
        self.dropped = 0  # all frames not rendered: cadence and late
        self.late_dropped = 0
        self._rng = rng or random.Random()
        self._events: deque[tuple[float, float | None]] = deque()  # (when, lateness) sent; None = dropped late
        self._changed_at = -np.inf
        self._judge_from = -np.inf
        self._last_late = -np.inf  # the last frame dropped or sent late
        self._recover_s = RECOVER_S
        self._raised_at: float | None = None  # when the level was last lowered by a recovery
        self._noticed_at = -np.inf
        self._noticed_dropped = 0

    @property
    def step(self) -> Step:
        return STEPS[self.level]

    @property
    def current_fps(self) -> float:
        return self.fps / self.step.stride

    @property
    def current_size(self) -> int:
        return self.size // self.step.scale

    def behind(self, now: float, within_s: float = 10.0) -> bool:
        """Whether this session is stepped down or had to drop or send late frames lately."""
        return self.level > 0 or now - self._last_late < within_s

    # -- per frame (the worker thread) ------------------------------------------------------------

    def keep(self, index: int, newest: bool, now: float, due: float) -> bool:
        """Render frame `index`? Off the current frame-rate cadence: no. Too late: no, unless it is
        the newest frame at hand."""
        if index % self.step.stride:
            self.dropped += 1
            return False
        if not newest and now + self.frame_cost_s - due > self.deadline_s:
            self.dropped += 1
            self.late_dropped += 1
            self._events.append((now, None))
            self._last_late = now
            return False
        return True

    def rendered(self, seconds_per_frame: float) -> None:
        """Fold the measured render + encode time of one frame into the running estimate."""
        self.frame_cost_s += 0.2 * (seconds_per_frame - self.frame_cost_s)

    # -- per frame sent (the event loop) ---------------------------------------------------------

    def sent(self, lateness: float, now: float) -> None:
        self._events.append((now, lateness))
        if lateness > self.deadline_s:
            self._last_late = now

    def update(self, now: float) -> dict[str, Any] | None:
        """Step down or up if the recent past says so; the `degraded` notice for the client when
        something changed (a step, or frames dropped since the last notice), else None."""
        while self._events and self._events[0][0] < max(now - WINDOW_S, self._judge_from):
            self._events.popleft()
        judged = len(self._events)
        late = sum(1 for _, x in self._events if x is None or x > self.deadline_s)
        stressed = judged >= MIN_EVENTS and late > LATE_SHARE * judged
        if stressed and now - self._changed_at >= HOLD_S and self.level < len(STEPS) - 1:
            if self._raised_at is not None and now - self._raised_at < STABLE_S:
                self._recover_s = min(2 * self._recover_s, RECOVER_MAX_S)  # the step up did not hold
            self._raised_at = None
            return self._change(self.level + 1, now, "the server is short of time")
        if self._raised_at is not None and now - self._raised_at >= STABLE_S:
            self._recover_s, self._raised_at = RECOVER_S, None
        calm_for = now - max(self._last_late, self._changed_at)
        if self.level > 0 and calm_for >= self._recover_s * self._rng.uniform(0.8, 1.2):
            self._raised_at = now
            return self._change(self.level - 1, now, "the server has time again")
        quiet_for = now - max(self._noticed_at, self._changed_at)
        if late and judged >= MIN_EVENTS and self.dropped > self._noticed_dropped and quiet_for >= NOTICE_EVERY_S:
            return self._notify(now, "the server is short of time: late frames were dropped")
        return None

    def notice(self, reason: str) -> dict[str, Any]:
        """The client's view of the current state: `{"degraded": {...}}`."""
        return {"degraded": {"level": self.level, "fps": round(self.current_fps, 2), "size": self.current_size,
                             "dropped": self.dropped, "reason": reason}}

    def _change(self, level: int, now: float, why: str) -> dict[str, Any]:
        self.level = level
        self._changed_at = now
        self._judge_from = now + SETTLE_S  # judge the new step on its own frames
        self._events.clear()
        if level == 0:
            what = f"back to {self.fps:g} fps at {self.size} px"
        else:
            what = f"frames are now sent at {self.current_fps:.3g} fps and {self.current_size} px to stay live"
        return self._notify(now, f"{why}: {what}")

    def _notify(self, now: float, reason: str) -> dict[str, Any]:
        self._noticed_at, self._noticed_dropped = now, self.dropped
        return self.notice(reason)


def shed_push(session: "Session", pcm: np.ndarray, shedder: "Shedder", due: Callable[[int], float]) -> list["LiveFrame"]:
    """Push sound into a live session, rendering only the frames `shedder` keeps (`due(index)`: when
    the sound completing that frame arrived), and tell it how long each kept frame took."""
    started: float | None = None

    def keep(index: int, newest: bool) -> bool:
        nonlocal started
        now = time.monotonic()
        if started is not None:  # the frame kept last has been rendered since
            shedder.rendered(now - started)
        started = now if shedder.keep(index, newest, now, due(index)) else None
        return started is not None

    frames = session.push(pcm, keep)
    if started is not None:
        shedder.rendered(time.monotonic() - started)
    return frames
