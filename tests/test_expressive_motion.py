"""The expressive layers on literal inputs: phrases, engagement, head amplitude, smiles, brows, and
the fitted constants keeping their phonetics."""

from __future__ import annotations

import numpy as np
import pytest

from facetalk.motion.brows import BrowMotion
from facetalk.motion.expressions import SmileMotion
from facetalk.motion.filters import Phrases, TimedDraws
from facetalk.motion.fitted import fitted
from facetalk.motion.head import HeadMotion, SteadySpread
from facetalk.motion.rhythm import Engagement, Rhythm, RhythmTracker
from facetalk.motion.visemes import MOUTH, VISEME_NAMES

FPS = 25.0


def activity(*runs: tuple[int, float]) -> np.ndarray:
    """Voice activity from (0 or 1, seconds) runs."""
    return np.concatenate([np.full(int(round(s * FPS)), float(v)) for v, s in runs])


def isolated_words(seconds: float) -> np.ndarray:
    """A reader's isolated words: 0.4 s of voice, 0.8 s of silence, over and over."""
    n = int(seconds / 1.2)
    return np.tile(activity((1, 0.4), (0, 0.8)), n)


def flowing_speech(seconds: float) -> np.ndarray:
    """Phrases of 3 s with 0.35 s breaths between them."""
    n = int(seconds / 3.35)
    return np.tile(activity((1, 3.0), (0, 0.35)), n)


def test_phrases_start_after_a_pause_and_end_after_one() -> None:
    a = np.r_[np.zeros(25), np.ones(50), np.zeros(3), np.ones(25), np.zeros(15), np.ones(25)]
    starts, ends = Phrases(FPS, pause_s=0.32).run(a)  # 8 frames of silence make a pause
    assert np.flatnonzero(starts).tolist() == [25, 118]  # the 3-frame gap is no pause
    assert starts[118] == pytest.approx(15 / FPS)  # the pause before it, in seconds
    assert np.flatnonzero(ends).tolist() == [103 + 7]  # once the pause has lasted 8 frames


def test_phrases_do_not_depend_on_the_chunking() -> None:
    a = np.tile(activity((1, 0.7), (0, 0.45), (1, 0.2), (0, 0.1)), 6)
    whole = Phrases(FPS).run(a)
    p = Phrases(FPS)
    parts = [p.run(a[i:i + 3]) for i in range(0, len(a), 3)]
    assert np.array_equal(np.concatenate([s for s, _ in parts]), whole[0])
    assert np.array_equal(np.concatenate([e for _, e in parts]), whole[1])


def test_timed_draws_are_the_same_within_a_bucket() -> None:
    d = TimedDraws(np.random.default_rng(1), 10, 2)
    first = d.at(3).copy()
    assert np.array_equal(d.at(9), first)
    assert not np.array_equal(d.at(10), first)
    again = TimedDraws(np.random.default_rng(1), 10, 2)
    assert np.array_equal(again.at(25), d.at(25))  # skipping buckets draws the same sequence


def test_engagement_grows_with_flowing_speech_not_with_isolated_words() -> None:
    e = fitted().head
    words = Engagement(FPS, e["engage_s"], e["power"], e["floor"]).run(isolated_words(12))
    flow = Engagement(FPS, e["engage_s"], e["power"], e["floor"]).run(flowing_speech(12))
    assert flow[-50:].mean() > 3 * words[-50:].mean()
    assert words.min() >= e["floor"] - 1e-9 and flow.max() <= 1.0


def head_spread(active: np.ndarray, seed: int) -> float:
    loud = active * 0.7
    out = HeadMotion(FPS, np.random.default_rng(seed)).run(RhythmTracker(FPS).run(active), loud, 0.0)
    return float(np.std(out["yaw"]) + np.std(out["pitch"]))


def test_a_calm_reader_holds_the_head_nearly_still_a_flowing_talker_moves_it() -> None:
    calm = np.mean([head_spread(isolated_words(15), s) for s in range(6)])
    lively = np.mean([head_spread(flowing_speech(15), s) for s in range(6)])
    assert lively > 2.5 * calm


def test_a_phrase_turns_each_angle_by_its_fitted_size_either_way() -> None:
    n = 100
    starts = np.zeros(n)
    starts[5] = 10.0  # a phrase after a long pause: a wholly new direction
    rhythm = Rhythm(starts, np.zeros(n, bool), np.ones(n))
    still = {k: 1e-6 for k in ("yaw", "pitch", "roll")}
    params = {"drift_sd": still, "turn_sd": {"yaw": 2.0, "pitch": 3.0, "roll": 1.0}, "nod_deg": 0.0}
    ends = np.array([[HeadMotion(FPS, np.random.default_rng(s), params).run(rhythm, np.zeros(n), 0.0)[k][-1]
                      for k in ("yaw", "pitch", "roll")] for s in range(12)])
    sizes = np.abs(ends)
    assert np.allclose(sizes / sizes[:, :1], [1.0, 1.5, 0.5], atol=1e-6)  # each angle its own size
    assert np.all((sizes[:, 0] > 2.0) & (sizes[:, 0] < 3.0))  # the fitted 2 deg, a little overshoot not yet settled
    assert (ends[:, 0] > 0).any() and (ends[:, 0] < 0).any()  # left or right by chance


def test_the_head_is_bent_into_the_reach_of_real_speakers() -> None:
    """However lively the voice and large the amplitudes, no angle passes the fitted reach; within a
    third of it the motion is all but untouched."""
    n = 30 * 25
    loud = np.tile(np.r_[np.full(20, 0.9), np.full(5, 0.1)], n // 25)
    rhythm = Rhythm(np.where(np.arange(n) % 50 == 0, 2.0, 0.0), np.zeros(n, bool), np.ones(n))
    reach = {"yaw": 12.0, "pitch": 8.0, "roll": 9.0}
    wild = {"drift_sd": {k: 20.0 for k in reach}, "turn_sd": {k: 20.0 for k in reach}, "nod_deg": 15.0}
    free = HeadMotion(FPS, np.random.default_rng(4), wild).run(rhythm, loud, 0.0)
    bent = HeadMotion(FPS, np.random.default_rng(4), {**wild, "reach_deg": reach}).run(rhythm, loud, 0.0)
    for k, r in reach.items():
        assert np.abs(free[k]).max() > 2 * r  # the same motion unbounded goes far past it
        assert np.abs(bent[k]).max() < r
        near = np.abs(free[k]) < r / 3
        assert np.allclose(bent[k][near], free[k][near], rtol=0.04)
    assert set(fitted().head["reach_deg"]) == set(reach)  # the shipped constants carry one per angle


def test_the_running_spread_is_held_at_the_expected_one() -> None:
    rng = np.random.default_rng(3)
    loud = 3.0 * rng.standard_normal(500) + 4.0  # variance 9 around a rest at 4
    out = SteadySpread(FPS, expected=1.0).run(loud)
    assert 0.6 < out[-125:].var() < 1.6  # brought down to ~1 within a few seconds
    assert abs(out[-125:].mean() - 4.0) < 1.0  # where it rests is kept
    right = rng.standard_normal(500)
    kept = SteadySpread(FPS, expected=1.0).run(right)
    assert np.allclose(kept[100:], right[100:], atol=0.35 * np.abs(right[100:]) + 0.05)  # already right: ~unchanged


def test_one_seed_moves_the_head_about_as_far_as_another() -> None:
    """The spread is the voice's prediction; the seed picks the path, not the size."""
    for active, limit in ((isolated_words(6), 0.22), (flowing_speech(8), 0.27)):
        sd = [head_spread(active, s) for s in range(24)]
        assert np.log(sd).std() < limit


def test_smiles_come_with_phrases_and_go_after_them() -> None:
    a = np.concatenate([np.tile(activity((1, 2.5), (0, 1.2)), 5), activity((0, 4.0))])
    pitch = np.where(a > 0.5, 180.0, 0.0)
    one = np.ones(len(a))
    params = {"smile": 0.6, "smile_chance": 1.0}  # every phrase smiles: the shape is what is tested
    starts, ends = Phrases(FPS).run(a)
    out = SmileMotion(FPS, np.random.default_rng(0), params).run(Rhythm(starts, ends, one), pitch, one)
    smile = out["mouthSmileL"]
    assert smile.max() > 0.3
    assert smile[-25:].max() < 0.05  # released in the long pause
    assert np.allclose(out["cheekRaise"], smile * 0.5) and np.allclose(out["eyeSquint"], smile * 0.4)
    rises = np.flatnonzero(np.diff((smile > 0.15).astype(int)) == 1)
    assert len(rises) >= 2  # they come and go, not one held grin


def test_a_sad_face_smiles_less_than_a_neutral_one() -> None:
    a = flowing_speech(30)
    pitch = np.where(a > 0.5, 180.0, 0.0)
    one = np.ones(len(a))
    rhythm = Rhythm(*Phrases(FPS).run(a), one)

    def total(gain: float) -> float:
        return float(np.mean([SmileMotion(FPS, np.random.default_rng(s)).run(rhythm, pitch, one * gain)["mouthSmileL"].sum()
                              for s in range(5)]))
    assert total(0.2) < 0.5 * total(1.0)


def brows(pitch: np.ndarray, active: np.ndarray, hold_s: float = 0.1) -> dict[str, np.ndarray]:
    loud = active * 0.8
    one = np.ones(len(active))
    params = {"brow": 0.8, "wide": 0.6, "brow_floor": 1.0, "brow_hold_s": hold_s}
    starts, ends = Phrases(FPS).run(active)
    return BrowMotion(FPS, params).run(pitch, loud, 0.0, 0.0, Rhythm(starts, ends, one), one)


def test_a_rising_question_raises_the_brows_at_its_end() -> None:
    a = activity((1, 1.5), (0, 1.5))
    n = len(a)
    rising = np.where(a > 0.5, 150.0 * 2 ** (np.clip(np.arange(n) - 25, 0, None) / 12 * 8 / 12), 0.0)
    flat = np.where(a > 0.5, 150.0, 0.0)
    end = int(1.5 * FPS) + int(0.3 * FPS)  # the phrase ends once 0.3 s of pause has passed
    asked, told = brows(rising, a)["browInnerUp"], brows(flat, a)["browInnerUp"]
    assert asked[end:end + 15].max() > 0.5 and told[end:].max() < 0.05


def test_a_brow_raise_holds_as_long_as_fitted() -> None:
    """One accent at 2 s: the brows are up 0.3 s later either way; 1.2 s later only with the long
    hold lively speakers have, and down again once it has eased back."""
    a = activity((1, 6.0))
    pitch = np.full(len(a), 150.0)
    pitch[50:56] = 150.0 * 2 ** (6 / 12)
    short, long = (brows(pitch, a, hold)["browInnerUp"] for hold in (0.1, 1.5))
    at = lambda x, s: x[int(round(s * FPS))]  # noqa: E731
    assert at(short, 2.3) > 0.3 and at(long, 2.3) > 0.3
    assert at(short, 3.2) < 0.05 < 0.3 < at(long, 3.2)
    assert at(long, 4.6) < 0.05


def test_a_strong_accent_widens_the_eyes() -> None:
    a = activity((1, 4.0))
    pitch = np.full(len(a), 150.0)
    pitch[50:56] = 150.0 * 2 ** (6 / 12)
    out = brows(pitch, a)
    assert out["eyeWide"][:50].max() == 0 and out["eyeWide"][52:62].max() > 0.2


def test_fitted_visemes_keep_their_phonetics() -> None:
    """Fitted to noisy phones, the openings must still read as their sounds."""
    t = {v: dict(zip(MOUTH, row)) for v, row in zip(VISEME_NAMES, fitted().visemes)}
    assert t["AA"]["jawOpen"] > t["EH"]["jawOpen"] > t["PP"]["jawOpen"]
    assert t["AA"]["jawOpen"] > t["IY"]["jawOpen"] > t["PP"]["jawOpen"]
    assert t["PP"]["jawOpen"] <= 0.05 and t["PP"]["lowerLipDown"] == 0 and t["PP"]["mouthPress"] > 0
    assert t["sil"]["jawOpen"] == 0 and t["sil"]["lowerLipDown"] == 0
    assert t["WW"]["mouthPucker"] > 0.5 and t["OW"]["mouthFunnel"] > 0.5 and t["IY"]["mouthStretch"] > 0.4
    assert t["AA"]["jawOpen"] >= 0.5  # an open vowel drops the jaw far enough to show the teeth
