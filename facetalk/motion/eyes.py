"""Eyes layer: blinks timed like people's, and gaze fixations with small saccades.

Blinks come about every 3-4 s (15-20 a minute), drawn from a gamma distribution and brought
forward to a pause that comes shortly before one is due. When the voice starts after a silence, a
blink follows within ONSET_BLINK_S: the real speakers' first blink comes 0.3-1.0 s after their
first word in 9 of the 15 clips of `../shared/eval/video_real` (dlib's eye aspect ratio; 2 blink
later, 4 not at all), so a 3 s sentence shows the blink its speaker would. Each closes fast, speeding up as the lid
falls, and opens slower, fast at first and easing into the open eye, timed so that the eval's
measure (dlib's eye aspect ratio on the rendered lids) sees the real speakers' phases. The gaze
holds on a point near the camera and jumps a little every few seconds; the generator
counter-rotates it against the head (the eyes keep looking at the camera while the head moves),
as the vestibulo-ocular reflex does.
"""

from __future__ import annotations

import numpy as np

BLINK_MEAN_S = 3.4
BLINK_MIN_GAP_S = 0.6
PAUSE_PULL_S = 0.8  # a blink due within this long after a pause starts comes at the pause
ONSET_BLINK_S = (0.3, 1.0)  # a blink follows a voice onset after ONSET_SILENCE_S of silence this soon
ONSET_SILENCE_S = 1.0
# Real blinks seen by the eval (dlib's eye aspect ratio, 34 blinks of the real clips, medians;
# phases bounded by 10 % and 80 % of each blink's deepest drop): closing 53 ms, closed 92 ms,
# opening 129 ms. Our lids reach 80 % of their deepest drop at eyeBlink CLOSED_LEVEL (dlib's
# reading saturates before the lid is fully down). The timing below is fitted so that a
# rendered blink has those phases: `python tools/fit_blinks.py ../shared/eval/video_real
# --photos ../shared/eval/images` refits both.
REAL_PHASES_S = (0.053, 0.092, 0.129)
CLOSED_LEVEL = 0.56
CLOSE_S, HOLD_S, OPEN_S = 0.11, 0.0, 0.27
SACCADE_EVERY_S = (1.2, 3.5)
SACCADE_SD_DEG = (2.0, 1.2)  # yaw, pitch spread of fixation points


def blink_shape(t: np.ndarray) -> np.ndarray:
    """Lid closure 0..1 at times t (s) after a blink starts: the lid accelerates down (a quadratic
    ease-in over CLOSE_S), stays shut HOLD_S, and lifts fast then settles (ease-out over OPEN_S)."""
    closing = np.clip(t / CLOSE_S, 0, 1) ** 2
    opening = (1 - np.clip((t - CLOSE_S - HOLD_S) / OPEN_S, 0, 1)) ** 2
    return np.where(t < CLOSE_S + HOLD_S, closing, opening) * (t >= 0)


class EyeMotion:
    """Lids (0..1) and gaze (degrees around straight ahead), chunk by chunk."""

    def __init__(self, fps: float, rng: np.random.Generator) -> None:
        self.fps = fps
        self.blink_rng, self.gaze_rng = rng.spawn(2)
        self.frame = 0
        self.due = self.blink_rng.uniform(0.3, BLINK_MEAN_S)  # s: when the next blink starts
        self.started: list[float] = []  # starts of blinks that may still be playing
        self.hold = 0  # frames left on the current fixation
        self.silent = ONSET_SILENCE_S  # s of silence before the frame at hand (a session opens silent)
        self.gaze = (0.0, 0.0)

    def run(self, active: np.ndarray, next_active: float) -> dict[str, np.ndarray]:
        n = len(active)
        t = (self.frame + np.arange(n)) / self.fps
        voiced = np.concatenate([active, [next_active]]) > 0.5
        lids, yaw, pitch = np.zeros(n), np.zeros(n), np.zeros(n)
        for i in range(n):
            if voiced[i] and not voiced[i + 1] and 0 < self.due - t[i] < PAUSE_PULL_S:
                self.due = t[i] + 0.05  # the speaker pauses: blink now rather than mid-word
            if voiced[i] and self.silent >= ONSET_SILENCE_S:  # the voice starts: a blink follows
                soon = t[i] + self.blink_rng.uniform(*ONSET_BLINK_S)
                last = self.started[-1] if self.started else -np.inf
                if self.due > soon and soon - last >= BLINK_MIN_GAP_S:
                    self.due = soon
            self.silent = 0.0 if voiced[i] else self.silent + 1.0 / self.fps
            while self.due <= t[i]:
                self.started = [s for s in self.started if t[i] - s < CLOSE_S + HOLD_S + OPEN_S] + [self.due]
                self.due += max(BLINK_MIN_GAP_S, self.blink_rng.gamma(4.0, BLINK_MEAN_S / 4.0))
            if self.started:
                lids[i] = max(float(blink_shape(np.array(t[i] - s))) for s in self.started)
            if self.hold <= 0:
                self.hold = max(1, int(self.gaze_rng.uniform(*SACCADE_EVERY_S) * self.fps))
                self.gaze = (self.gaze_rng.normal(0, SACCADE_SD_DEG[0]), self.gaze_rng.normal(0, SACCADE_SD_DEG[1]))
            self.hold -= 1
            yaw[i], pitch[i] = self.gaze
        self.frame += n
        return {"eyeBlinkL": lids, "eyeBlinkR": lids, "gazeYaw": yaw, "gazePitch": pitch}
