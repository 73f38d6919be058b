"""Listening layer: the face of someone who is being talked to, when the voice has been silent a while.

An avatar in a conversation spends half its time silent while the user speaks. A face that only
moves with its own voice then freezes into a photo with blinks. Listeners keep moving: the head
drifts a little, they nod now and then (backchannel nods come every few seconds in conversation),
and smile briefly. This layer fades in after LISTEN_AFTER_S of silence and out within a few frames
of the voice coming back, so turns blend without a snap; during speech it adds nothing.

There are no listening clips among the real ones to fit these to; the amplitudes are those of the
speech layers' quiet end (a degree or two), the rates those reported for listeners' nods.
Events are drawn per one-second bucket (filters.TimedDraws), so a live stream gets the file's
listening motion frame for frame, and the layer's state is a few numbers: an hour of listening
holds no more memory than a second.
"""

from __future__ import annotations

import numpy as np

from facetalk.motion.filters import Follower, Pending, TimedDraws
from facetalk.motion.head import ANGLES, _OU

LISTEN_AFTER_S = 1.5  # silence this long before the face starts listening
LISTEN_IN_S, LISTEN_OUT_S = 0.8, 0.15  # it fades in slowly and gives way to speech fast
DRIFT_SD = {"yaw": 1.2, "pitch": 0.8, "roll": 0.8}  # degrees
DRIFT_TAU_S = 2.5
SMOOTH_S = 0.2  # two one-pole stages: a listener's head glides, without a talker's quick grain
NODS_PER_S = 0.15  # about one every seven seconds
NOD_DEG = (1.5, 3.5)  # a nod's dip of the pitch, smallest to largest
NOD_S = 0.6
DOUBLE_NOD = 0.3  # share of nods that come twice ("mm-hm")
SMILES_PER_S = 0.05  # one every twenty seconds or so
SMILE = (0.15, 0.35)  # mouthSmile of a brief listener's smile
SMILE_S = (1.2, 2.5)  # how long it is held
SMILE_IN_S, SMILE_OUT_S = 0.3, 0.6


def _nod(fps: float, deg: float, double: bool) -> np.ndarray:
    n = max(2, int(round(NOD_S * fps)))
    one = -deg * np.sin(np.pi * np.linspace(0, 1, n)) ** 2
    return np.concatenate([one, 0.7 * one]) if double else one


def _smile(fps: float, amp: float, hold_s: float) -> np.ndarray:
    rise = 0.5 - 0.5 * np.cos(np.pi * np.linspace(0, 1, max(2, int(SMILE_IN_S * fps))))
    fall = 0.5 + 0.5 * np.cos(np.pi * np.linspace(0, 1, max(2, int(SMILE_OUT_S * fps))))
    return amp * np.concatenate([rise, np.ones(max(1, int(hold_s * fps))), fall])


class ListeningMotion:
    """Voice activity in, chunk by chunk; head offsets (degrees) and a smile (0..1) out."""

    def __init__(self, fps: float, rng: np.random.Generator) -> None:
        self.fps = fps
        drift_rng, event_rng = rng.spawn(2)
        self.drift = {k: _OU(fps, DRIFT_SD[k], DRIFT_TAU_S, r) for k, r in zip(ANGLES, drift_rng.spawn(3))}
        self.smooth = {k: (Follower(fps, SMOOTH_S, SMOOTH_S), Follower(fps, SMOOTH_S, SMOOTH_S)) for k in ANGLES}
        self.weight = Follower(fps, LISTEN_IN_S, LISTEN_OUT_S)
        self.draws = TimedDraws(event_rng, max(1, int(round(fps))), 6)
        self.silent = 0  # frames since the voice was last active
        self.frame = 0
        self.nods, self.smiles = Pending(), Pending()

    def run(self, active: np.ndarray) -> dict[str, np.ndarray]:
        n = len(active)
        want = np.empty(n)
        per_bucket = self.draws.every
        for i, a in enumerate(active):
            self.silent = 0 if a > 0.5 else self.silent + 1
            want[i] = float(self.silent >= LISTEN_AFTER_S * self.fps)
            frame = self.frame + i
            if frame % per_bucket == 0 and self.silent >= LISTEN_AFTER_S * self.fps:
                u = self.draws.at(frame)
                if u[0] < NODS_PER_S:
                    deg = NOD_DEG[0] + u[1] * (NOD_DEG[1] - NOD_DEG[0])
                    self.nods.add(i + int(u[2] * per_bucket), _nod(self.fps, deg, u[3] < DOUBLE_NOD))
                if u[4] < SMILES_PER_S:
                    amp = SMILE[0] + u[5] * (SMILE[1] - SMILE[0])
                    hold = SMILE_S[0] + u[1] * (SMILE_S[1] - SMILE_S[0])
                    self.smiles.add(i, _smile(self.fps, amp, hold), combine=np.maximum)
        self.frame += n
        w = self.weight.run(want)
        out = {k: self.smooth[k][1].run(self.smooth[k][0].run(self.drift[k].run(n))) * w for k in ANGLES}
        out["pitch"] = out["pitch"] + self.nods.take(n) * w
        out["smile"] = self.smiles.take(n) * w
        return out
