"""Pitch per frame, pitch accents, and the brow raises they drive."""

from __future__ import annotations

import numpy as np
import pytest

from facetalk.audio.features import Features, audio_features
from facetalk.audio.pitch import PitchTracker
from facetalk.motion.brows import BrowMotion
from facetalk.motion.filters import Phrases
from facetalk.motion.rhythm import Rhythm
from facetalk.motion.prosody import Accents

RATE, FPS = 16000, 25.0


def voice(f0: np.ndarray) -> np.ndarray:
    """A buzzy harmonic voice following the sample-rate contour `f0` (Hz)."""
    phase = 2 * np.pi * np.cumsum(f0) / RATE
    return (0.3 * sum(np.sin(k * phase) / k for k in range(1, 8))).astype(np.float32)


@pytest.mark.parametrize("hz", [90.0, 140.0, 220.0, 330.0])
def test_pitch_of_a_steady_voice(hz: float) -> None:
    x = voice(np.full(RATE // 2, hz))
    assert PitchTracker(RATE).f0(x[-800:]) == pytest.approx(hz, rel=0.02)


def test_noise_and_silence_are_unvoiced() -> None:
    tracker = PitchTracker(RATE)
    assert tracker.f0(np.random.default_rng(0).standard_normal(800)) == 0.0
    assert tracker.f0(np.zeros(800)) == 0.0


def test_pitch_contour_follows_a_glide_whatever_the_chunking() -> None:
    t = np.arange(2 * RATE) / RATE
    f0 = 120 + 60 * t  # 120 -> 240 Hz over 2 s
    x = voice(f0)
    whole = audio_features([x], RATE, FPS, phones=False)
    chunked = audio_features([x[i:i + 1234] for i in range(0, len(x), 1234)], RATE, FPS, phones=False)
    assert np.array_equal(whole.pitch_hz, chunked.pitch_hz)
    frames = np.arange(5, len(whole) - 2)
    expected = 120 + 60 * ((frames + 1) / FPS - 0.02)  # the 40 ms window ends at each frame's end
    assert np.allclose(whole.pitch_hz[frames], expected, rtol=0.04)


def features_with_pitch(pitch: np.ndarray, loud: np.ndarray) -> Features:
    n = len(pitch)
    return Features(FPS, loud.astype(np.float32), np.full(n, -20, np.float32), np.zeros(n, np.float32),
                    (loud > 0.2).astype(np.float32), None, pitch.astype(np.float32))


def accents(f: Features, chunk: int | None = None) -> list[tuple[int, float]]:
    """Accents over a whole clip, fed `chunk` frames at a time (all at once by default)."""
    acc, found, n = Accents(FPS), [], len(f)
    step = chunk or n
    for a in range(0, n, step):
        b = min(n, a + step)
        nxt = (float(f.pitch_hz[b]), float(f.loudness[b])) if b < n else (0.0, 0.0)
        found += [(a + i, s) for i, s in acc.run(f.pitch_hz[a:b], f.loudness[a:b], *nxt)]
    return found


def brows(f: Features) -> np.ndarray:
    nxt = f.pitch_hz[1:].tolist() + [0.0], f.loudness[1:].tolist() + [0.0]
    b, phrases = BrowMotion(FPS), Phrases(FPS)
    one = np.ones(1)
    return np.concatenate([b.run(f.pitch_hz[i:i + 1], f.loudness[i:i + 1], nxt[0][i], nxt[1][i],
                                 Rhythm(*phrases.run(f.active[i:i + 1]), one), one)["browInnerUp"]
                           for i in range(len(f))])


def test_accents_are_relative_to_the_speakers_running_median() -> None:
    """The same 200 Hz stretch is an accent for a 100 Hz voice, not for a 200 Hz one."""
    low = np.r_[np.full(40, 100.0), np.full(6, 200.0), np.full(40, 100.0)]
    high = np.r_[np.full(40, 200.0), np.full(6, 200.0), np.full(40, 200.0)]
    loud = np.full(len(low), 0.8)
    assert [i for i, _ in accents(features_with_pitch(low, loud))] == [41]
    assert accents(features_with_pitch(high, loud)) == []


def test_accents_do_not_depend_on_the_chunking() -> None:
    rng = np.random.default_rng(2)
    pitch = 150 * 2 ** (rng.normal(0, 2.5, 300) / 12) * (rng.random(300) > 0.2)
    f = features_with_pitch(pitch, rng.uniform(0.3, 1.0, 300))
    whole = accents(f)
    assert len(whole) >= 3
    assert accents(f, chunk=1) == whole and accents(f, chunk=7) == whole


def test_a_pitch_accent_raises_the_brows_as_it_is_heard() -> None:
    n = 130  # the raise holds (fitted, up to 1.5 s) and eases back before the end
    pitch = np.full(n, 150.0)
    pitch[50:56] = 150.0 * 2 ** (5 / 12)  # five semitones up, as on a stressed word
    loud = np.full(n, 0.8)
    f = features_with_pitch(pitch, loud)
    found = accents(f)
    assert len(found) == 1 and 50 <= found[0][0] < 56
    b = brows(f)
    assert b[:50].max() == 0 and b[53:60].max() > 0.5 * b.max() > 0.05 and b[-10:].max() < 0.05
    assert 53 <= b.argmax() <= 58  # up within ~150 ms of the accent


def test_flat_or_quiet_speech_has_no_accents() -> None:
    n = 100
    assert accents(features_with_pitch(np.full(n, 150.0), np.full(n, 0.8))) == []
    pitch = np.full(n, 150.0)
    pitch[50:56] = 300.0
    assert accents(features_with_pitch(pitch, np.full(n, 0.05))) == []
