"""Mouth layer: phones give the shapes (visemes with coarticulation), loudness scales how open.

Without phones (recognition off, failed, or not yet heard any) a loudness-only fallback: the
speech-band envelope is the best single predictor of jaw opening; it opens fast and closes a little
slower (muscles release slower than they contract), and the lips spread for bright sounds and
round for dark ones. The same fallback fills in where the recogniser hears silence but the voice
is on (a laugh, an excited burst it cannot parse: `v23` has a second of loud speech read as
silence), so a speaking voice never comes with a shut mouth.

The phones alone miss closures: the recogniser misreads a P as "D K", and coarticulation blurs a
short M between two vowels. Some the sound shows: a P, and a B with little voicing, drop the level
25-35 dB for 50-150 ms inside the word, and `closure_gate` shuts the openings in such dips. A
voiced M or B dips only 5-17 dB, as unstressed vowels do, so those still rest on the phones (or on
the words, `--text`).
"""

from __future__ import annotations

import numpy as np

from facetalk.audio.features import DYNAMIC_RANGE_DB
from facetalk.audio.phones import Phones
from facetalk.motion.filters import Follower
from facetalk.motion.fitted import fitted
from facetalk.motion.visemes import bilabial_closures, blend

JAW_GAIN = 0.55  # jawOpen at full loudness (1.0 = the widest the face can open)
ATTACK_S, RELEASE_S = 0.025, 0.06  # time constants of opening and closing
MISSED_S = 0.04  # the fallback fades in and out of a stretch of voice read as silence over this
GATE_RAMP_DB = 6.0  # the lips go from shut to free over this much level above the closure level
CLOSE_S, REOPEN_S = 0.03, 0.02  # a plosive's release is the fastest lip motion there is
GATED = ("jawOpen", "lowerLipDown", "upperLipUp")  # the openings a closure shuts
MURMUR_FRAMES = 2  # voice read as silence up to this many frames before an M, B or P is its murmur


def follow_envelope(x: np.ndarray, fps: float, attack_s: float, release_s: float) -> np.ndarray:
    """One-pole smoothing with separate rise and fall time constants, from 0."""
    return Follower(fps, attack_s, release_s).run(np.asarray(x, np.float64))


def closure_gate(loudness: np.ndarray, brightness: np.ndarray, active: np.ndarray, closure_db: float) -> np.ndarray:
    """(T,) how far the lips may open, 0..1: 0 inside speech where the whole voice (speech band and
    hiss together, so an S or F keeps its opening) falls `closure_db` or more under the speaker's
    peak, 1 from GATE_RAMP_DB above that. Outside speech the visemes close the lips already."""
    if closure_db <= 0:
        return np.ones(len(loudness))
    speech_db = DYNAMIC_RANGE_DB * (np.asarray(loudness, np.float64) - 1.0)  # under the peak, floored at the range
    level = speech_db - 10.0 * np.log10(np.clip(1.0 - np.asarray(brightness, np.float64), 1e-6, 1.0))
    free = np.clip((level + closure_db) / GATE_RAMP_DB, 0.0, 1.0)
    return np.where(np.asarray(active) > 0.5, free, 1.0)


def has_speech(phones: Phones | None) -> bool:
    return phones is not None and any(p != "SIL" for p in phones.labels)


def silent_frames(phones: Phones, first: int, n: int, fps: float) -> np.ndarray:
    """(n,) bool: frames first.. whose time falls in a silence or past the phones recognised so far."""
    t = (first + np.arange(n)) / fps
    i = np.searchsorted(phones.starts, t, side="right") - 1
    j = np.clip(i, 0, None)  # only the chunk's own phones are looked at: a long stream has many
    silence = np.array([phones.labels[k] == "SIL" for k in j], bool)
    return (i < 0) | (t >= phones.ends[j]) | silence


def bilabials_shut(phones: Phones, heard_as_silence: np.ndarray, first: int, fps: float,
                   anticipation_s: float) -> np.ndarray:
    """(len(heard_as_silence),) bool: the frames first.. an M, B or P shuts, whatever else would open them:
    its own (`visemes.bilabial_closures`), and up to MURMUR_FRAMES of voice read as silence just
    before it, which is its voiced murmur (the phones start an M a frame or two late, and the
    loudness fallback would open the mouth for it). Phones are timed, so the frames after these
    are known as far as the phones go."""
    n = len(heard_as_silence)
    ahead = bilabial_closures(phones, n + MURMUR_FRAMES, fps, first, anticipation_s)
    shut = ahead[:n].copy()
    for k in range(1, MURMUR_FRAMES + 1):
        shut |= heard_as_silence & ahead[k:k + n]
    return shut


class MouthMotion:
    """The mouth's coefficients, chunk by chunk. mouthClose is 1 throughout: the photo's own lip
    gap is removed and every opening comes from the speech, or a photo taken mid-word would never
    shut its mouth."""

    def __init__(self, fps: float, targets: np.ndarray | None = None, gain: tuple[float, float] | None = None,
                 coarticulation: tuple[float, float] | None = None, closure_db: float | None = None) -> None:
        f = fitted()
        self.closure_db = f.closure_db if closure_db is None else closure_db
        self.targets = f.visemes if targets is None else targets  # (V, P): fitted to real speakers
        self.gain_floor, self.gain_slope = f.mouth_gain if gain is None else gain
        self.reach_s, self.anticipation_s = f.coarticulation if coarticulation is None else coarticulation
        self.fps = fps
        self.frame = 0
        self.gain = Follower(fps, ATTACK_S, RELEASE_S)
        self.missed = Follower(fps, MISSED_S, MISSED_S)
        self.jaw = Follower(fps, ATTACK_S, RELEASE_S)
        self.gate = Follower(fps, REOPEN_S, CLOSE_S, start=1.0)
        self.shape = {k: Follower(fps, 0.04, 0.08) for k in ("stretch", "funnel", "pucker")}
        self.bright = [0, 0.0, 0.0]  # count, mean, M2 of the brightness while speaking (Welford)

    def run(self, phones: Phones | None, loudness: np.ndarray, brightness: np.ndarray,
            active: np.ndarray) -> dict[str, np.ndarray]:
        loud = loudness.astype(np.float64)
        gain = np.clip(self.gain_floor + self.gain_slope * self.gain.run(loud), 0.0, 1.6)  # quiet speech mumbles, loud opens wide
        fallback = self._loudness_curves(loud, brightness.astype(np.float64), active.astype(np.float64))
        n = len(loud)
        shut = np.zeros(n, bool)
        if has_speech(phones):
            curves = self._viseme_curves(phones, gain)
            heard_as_silence = silent_frames(phones, self.frame, n, self.fps) & (active > 0.5)
            shut = bilabials_shut(phones, heard_as_silence, self.frame, self.fps, self.anticipation_s)
            w = self.missed.run(heard_as_silence.astype(np.float64))
            for k, fb in fallback.items():
                curves[k] = (1.0 - w) * curves.get(k, 0.0) + w * fb
        else:
            curves = fallback
        gate = self.gate.run(closure_gate(loud, brightness, active, self.closure_db)) * ~shut
        for k in GATED:
            if k in curves:
                curves[k] = curves[k] * gate
        self.frame += len(loud)
        return {**curves, "mouthClose": np.ones(len(loud))}

    def _viseme_curves(self, phones: Phones, gain: np.ndarray) -> dict[str, np.ndarray]:
        v = blend(phones, len(gain), self.fps, first=self.frame, targets=self.targets, reach_s=self.reach_s,
                  anticipation_s=self.anticipation_s)
        jaw = np.clip(v["jawOpen"] * gain, 0.0, 1.0)
        return {
            "jawOpen": jaw,
            "mouthPress": v["mouthPress"],
            "mouthFunnel": v["mouthFunnel"],
            "mouthPucker": v["mouthPucker"],
            "mouthStretchL": v["mouthStretch"],
            "mouthStretchR": v["mouthStretch"],
            "upperLipUp": v["upperLipUp"],
            "lowerLipDown": np.clip(v["lowerLipDown"] * gain, 0.0, 1.0),
        }

    def _loudness_curves(self, loud: np.ndarray, bright: np.ndarray, active: np.ndarray) -> dict[str, np.ndarray]:
        jaw = self.jaw.run(np.power(loud, 0.8) * JAW_GAIN)
        z = np.zeros(len(loud))
        for i, (b, speaking) in enumerate(zip(bright, active)):
            if speaking > 0.5:  # how bright this voice usually is, learnt as it speaks
                n, mean, m2 = self.bright
                n += 1
                d = b - mean
                mean += d / n
                self.bright = [n, mean, m2 + d * (b - mean)]
            n, mean, m2 = self.bright
            spread = np.sqrt(m2 / n) + 1e-6 if n > 1 else 1.0
            z[i] = np.clip((b - mean) / (2 * spread), -1, 1) * speaking if n > 1 else 0.0
        stretch = self.shape["stretch"].run(np.clip(z, 0, 1) * 0.35)
        return {
            "jawOpen": jaw,
            "mouthStretchL": stretch,
            "mouthStretchR": stretch,
            "mouthFunnel": self.shape["funnel"].run(np.clip(-z, 0, 1) * 0.35 * np.clip(loud * 2, 0, 1)),
            "mouthPucker": self.shape["pucker"].run(np.clip(-z, 0, 1) * 0.25),
            "lowerLipDown": jaw * 0.3,
        }
