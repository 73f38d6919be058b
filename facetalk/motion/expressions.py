"""Speech-driven expressions: smiles that come and go with phrases, squint with them.

Real speakers smile while talking, not only when told to: a smile comes on at the start of a phrase
or of the next breath group in flowing speech (more often and broader in lively, higher-pitched,
flowing speech), is held for a while (1.5-3.5 s) and is released slowly, at once when the phrase
ends; the cheeks rise and the lids narrow with it (AU6 with AU12).
How often and how broad are fitted to real speakers (`fitted.json`, by `tools/fit_motion.py`);
the emotion control scales them (a happy face smiles more, a sad or angry one hardly at all) and
its own offsets are laid on top by the generator, as the baseline.
"""

from __future__ import annotations

import numpy as np

from facetalk.motion.filters import Follower, TimedDraws
from facetalk.motion.fitted import fitted
from facetalk.motion.rhythm import Rhythm

SMILE_ON_S, SMILE_OFF_S = 0.3, 0.9  # a smile comes on quickly and fades slowly
HOLD_S = (1.5, 3.5)  # an episode (smiling or not) lasts this long before the next draw, while talking
CHEEK_SHARE, SQUINT_SHARE = 0.5, 0.4  # of a smile: the cheeks rise, the lids narrow (Duchenne)
DRAW_S = 0.5  # chance and size are drawn per half second (see TimedDraws)
PITCH_REF_HZ = 160.0  # a voice pitched here smiles as fitted; higher voices a little more


class SmileMotion:
    """mouthSmileL/R, cheekRaise and eyeSquint, chunk by chunk."""

    def __init__(self, fps: float, rng: np.random.Generator, params: dict | None = None) -> None:
        p = fitted().expression if params is None else params
        self.fps = fps
        self.amount, self.chance = float(p["smile"]), float(p["smile_chance"])
        self.draws = TimedDraws(rng, int(round(DRAW_S * fps)), 3)
        self.frame = 0
        self.follow = Follower(fps, SMILE_ON_S, SMILE_OFF_S)
        self.level = 0.0  # the smile the face is heading for
        self.left = 0  # frames left in the current episode
        self.speaking = False
        self.pitch_log = [0, 0.0]  # voiced frames heard, sum of log2 f0

    def run(self, rhythm: Rhythm, pitch_hz: np.ndarray, gain: np.ndarray,
            also: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """`gain`: the emotion's smile gain per frame; `also`: another layer's smile (a listener's),
        the larger of the two shows, with its cheeks and squint."""
        starts, ends, engagement = rhythm.starts, rhythm.ends, rhythm.engagement
        n = len(starts)
        target = np.empty(n)
        for i in range(n):
            if pitch_hz[i] > 0:
                self.pitch_log[0] += 1
                self.pitch_log[1] += np.log2(pitch_hz[i])
            self.speaking = (self.speaking or starts[i]) and not ends[i]
            self.left -= 1
            if starts[i] or (self.speaking and self.left <= 0):  # a phrase or a breath group begins
                u, size, hold = self.draws.at(self.frame + i)
                lively = 0.3 + 0.7 * engagement[i]
                pitch = (2 ** (self.pitch_log[1] / self.pitch_log[0]) if self.pitch_log[0] else PITCH_REF_HZ)
                height = float(np.clip(np.sqrt(pitch / PITCH_REF_HZ), 0.8, 1.3))
                chance = min(1.0, self.chance * lively * height * gain[i])
                self.level = self.amount * (0.5 + 0.5 * size) * lively * height * min(gain[i], 1.5) if u < chance else 0.0
                self.left = int((HOLD_S[0] + (HOLD_S[1] - HOLD_S[0]) * hold) * self.fps)
            if ends[i]:
                self.level = 0.0
            target[i] = self.level
        self.frame += n
        smile = self.follow.run(target)
        smile = np.clip(smile if also is None else np.maximum(smile, also), 0.0, 1.0)
        return {"mouthSmileL": smile, "mouthSmileR": smile, "cheekRaise": smile * CHEEK_SHARE,
                "eyeSquint": smile * SQUINT_SHARE}
