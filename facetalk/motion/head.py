"""Head layer: phrase-level turns, slow drift and nods, as large as the voice is lively.

Real speakers differ tenfold in how much they move their head (`tools/fit_motion.py` measures
0.2-0.6 degrees of yaw spread for GRID's studio readers, 1.5-4.3 for conversational talkers), and
what tells them apart in the sound is how continuously they talk: isolated read words come with a
still head, flowing speech with a moving one. So every part of the motion is scaled by an
*engagement*, a slow follower of the voice activity raised to a fitted power:

- turns: at each phrase start (speech after a pause) the head takes a new direction, glides to it
  and holds it through the phrase; each angle turns by the fitted size, left or right (up or down)
  by chance;
- drift: an Ornstein-Uhlenbeck process per angle (a random walk pulled back to rest) around that
  direction, so the head never freezes and never wanders off;
- nods: a dip of the pitch on loud onsets (stressed syllables, phrase starts);
- a reach: the sum is bent smoothly (tanh) into the farthest any real speaker turns from where
  the head rests (`reach_deg`, fitted: 13.5 deg of yaw, 8.9 of pitch, 9.8 of roll). The
  amplitudes are fitted to spreads, and a spread says nothing of the tails: unbounded, a lively
  voice's drift, turns and nods added up to 31 deg of pitch on `v23` (its speaker goes 8.5 deg
  from her median, none of the clips past 8.9), a face looking at the ceiling.

The size of the motion is a prediction from the voice, and the chance in it is kept to where the
head goes, not how far it moves: a random walk's spread over a few seconds varies by x1.5 from one
seed to the next (and a normally drawn turn size by more), so the video of one seed could move
half or twice as much as the voice calls for. A slow gain (SteadySpread) holds the running spread
of turns and drift about where the head rests lately at its expected value: over the evaluation's
clips the sd across seeds of a clip's log yaw spread fell from 0.39 to 0.24
(`tools/head_seed_floor.py`).

Amplitudes come from `fitted.json`. Everything is causal with one frame of lookahead.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.signal import lfilter

from facetalk.motion.filters import Follower, Pending, PeakPicker, TimedDraws
from facetalk.motion.fitted import fitted
from facetalk.motion.rhythm import Rhythm

DRIFT_TAU_S = {"yaw": 1.6, "pitch": 1.1, "roll": 2.0}
ANGLES = ("yaw", "pitch", "roll")
SMOOTH_S = 0.05  # two one-pole stages take the frame-to-frame grain out of the drift
TURN_S = 0.3  # time constant of the glide to a new phrase direction
NOD_S = 0.35  # duration of a nod
NOD_RISE = 0.06  # loudness rise per frame that counts as an onset
NOD_GAP_S = 0.45
STEADY_PRIOR_S = 0.25  # the expected spread counts as this much motion already seen
STEADY_WINDOW_S = 5.0  # the spread is judged over about the last this many seconds
STEADY_LIMIT = 3.0  # the gain stays within 1/3..3 (at the start, the head leaving the photo's pose)
DRAW_S = 0.5  # phrase directions are drawn per half second (see TimedDraws)
FULL_TURN_PAUSE_S = 1.0  # after a pause this long a phrase takes a wholly new direction; after a
# shorter one it moves part of the way (a pause just long enough to count changes little, so a live
# stream that counts one the file render does not still looks alike)


def ou_process(n: int, fps: float, sd: float, tau_s: float, rng: np.random.Generator) -> np.ndarray:
    """An Ornstein-Uhlenbeck series, y[i] = a*y[i-1] + noise, with stationary spread `sd`. It starts
    at 0, so the video opens on the photo's own pose and the motion grows in over about tau_s."""
    return _OU(fps, sd, tau_s, rng).run(n)


class _OU:
    def __init__(self, fps: float, sd: float, tau_s: float, rng: np.random.Generator) -> None:
        self.a = np.exp(-1.0 / (tau_s * fps))
        self.gain = sd * np.sqrt(1 - self.a * self.a)
        self.rng = rng
        self.state = np.zeros(1)  # lfilter's: a * the last value

    def run(self, n: int) -> np.ndarray:
        out, self.state = lfilter([self.gain], [1.0, -self.a], self.rng.standard_normal(n), zi=self.state)
        return out


class SteadySpread:
    """Holds a series' running spread at `expected` (a variance): the running mean (where the head
    rests lately) stays, the motion about it is scaled by sqrt(expected / its running variance),
    within STEADY_LIMIT. Both are averages over the frames so far, the expected variance weighing
    as STEADY_PRIOR_S of them, forgetting what is older than about STEADY_WINDOW_S."""

    def __init__(self, fps: float, expected: float) -> None:
        self.fps, self.expected = fps, expected
        self.mean, self.var, self.seen = 0.0, expected, 0

    def run(self, x: np.ndarray) -> np.ndarray:
        n = len(x)
        count = self.seen + np.arange(1, n + 1)
        alpha = np.maximum(1.0 / (STEADY_PRIOR_S * self.fps + count), 1.0 / (STEADY_WINDOW_S * self.fps))
        out = np.empty(n)
        mean, var = self.mean, self.var
        for i in range(n):
            mean += alpha[i] * (x[i] - mean)
            var += alpha[i] * ((x[i] - mean) ** 2 - var)
            gain = min(max(math.sqrt(self.expected / max(var, 1e-12)), 1.0 / STEADY_LIMIT), STEADY_LIMIT)
            out[i] = mean + gain * (x[i] - mean)
        self.mean, self.var, self.seen = mean, var, self.seen + n
        return out


def nod_kernel(fps: float) -> np.ndarray:
    n = max(2, int(round(NOD_S * fps)))
    t = np.linspace(0, 1, n)
    return -np.sin(np.pi * t) ** 2


class HeadMotion:
    """Yaw, pitch, roll in degrees, chunk by chunk (the caller scales them by the controls)."""

    def __init__(self, fps: float, rng: np.random.Generator, params: dict | None = None) -> None:
        p = fitted().head if params is None else params
        self.fps = fps
        drift_rng, turn_rng, side_rng = rng.spawn(3)
        self.drift = {k: _OU(fps, p["drift_sd"][k], DRIFT_TAU_S[k], r) for k, r in zip(ANGLES, drift_rng.spawn(3))}
        self.smooth = {k: (Follower(fps, SMOOTH_S, SMOOTH_S), Follower(fps, SMOOTH_S, SMOOTH_S)) for k in ANGLES}
        self.turn_sd = p["turn_sd"]
        self.turn_draws = TimedDraws(turn_rng, int(round(DRAW_S * fps)), len(ANGLES))
        self.frame = 0
        self.target = {k: 0.0 for k in ANGLES}
        self.glide = {k: Follower(fps, TURN_S, TURN_S) for k in ANGLES}
        self.steady = {k: SteadySpread(fps, p["drift_sd"][k] ** 2 + p["turn_sd"][k] ** 2) for k in ANGLES}
        self.nod_deg = p["nod_deg"]
        self.level = Follower(fps, 1.0 / fps, 1.0 / fps)  # the loudness, lightly smoothed, for onsets
        self.onsets = PeakPicker(NOD_RISE, max(1, int(NOD_GAP_S * fps)))
        self.nods = Pending()
        self.kernel = nod_kernel(fps)
        self.turn = float(side_rng.choice([-1.0, 1.0]))  # which way nods also turn the head a little
        self.reach = p.get("reach_deg")  # None: unbounded (hand-made parameters in tests)

    def run(self, rhythm: Rhythm, loudness: np.ndarray, next_loudness: float) -> dict[str, np.ndarray]:
        n = len(loudness)
        amp, starts = rhythm.engagement, rhythm.starts
        targets = np.empty((n, len(ANGLES)))
        for i in range(n):
            if starts[i]:  # a new phrase, a new direction: the more so, the longer the pause before it
                side = np.where(self.turn_draws.at(self.frame + i) < 0.5, -1.0, 1.0)
                w = min(1.0, starts[i] / FULL_TURN_PAUSE_S)
                self.target = {k: (1 - w) * self.target[k] + w * float(side[j] * self.turn_sd[k])
                               for j, k in enumerate(ANGLES)}
            targets[i] = [self.target[k] for k in ANGLES]
        self.frame += n
        out = {}
        for j, k in enumerate(ANGLES):
            a, b = self.smooth[k]
            out[k] = self.steady[k].run(b.run(a.run(self.drift[k].run(n))) + self.glide[k].run(targets[:, j])) * amp
        before = self.level.y
        level = self.level.run(loudness)
        after = self.level.y + self.level.up * (next_loudness - self.level.y)  # the next frame, not kept
        rise = np.diff(np.concatenate([[before], level, [after]]))
        for i, strength in self.onsets.run(rise[:-1], float(rise[-1])):
            self.nods.add(i, self.kernel * min(1.0, strength / 0.25) * self.nod_deg)
        nods = self.nods.take(n) * np.sqrt(amp)
        out["pitch"] = out["pitch"] + nods
        out["yaw"] = out["yaw"] + 0.25 * nods * self.turn
        if self.reach:
            out = {k: self.reach[k] * np.tanh(v / self.reach[k]) for k, v in out.items()}
        return out
