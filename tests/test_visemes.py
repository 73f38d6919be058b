"""Phones -> mouth curves on small literal inputs: mapping, anticipation, closure, pause relaxation."""

from __future__ import annotations

import numpy as np
import pytest

from facetalk.audio.features import Features
from facetalk.audio.phones import Phones, recognise_phones
from facetalk.motion.mouth import GATE_RAMP_DB, MouthMotion, closure_gate, silent_frames
from facetalk.motion.visemes import ANTICIPATION_S, CLOSURE_JAW, MOUTH, VISEMES, blend, viseme_of

FPS = 25.0


def mouth_curves(f: Features) -> dict[str, np.ndarray]:
    return MouthMotion(f.fps).run(f.phones, f.loudness, f.brightness, f.active)


def phones(*segments: tuple[str, float, float]) -> Phones:
    labels, starts, ends = zip(*segments)
    return Phones(tuple(labels), np.array(starts, float), np.array(ends, float))


@pytest.mark.parametrize("phone, viseme", [
    ("M", "PP"), ("B", "PP"), ("P", "PP"), ("F", "FF"), ("V", "FF"), ("TH", "TH"), ("T", "DD"), ("S", "SS"),
    ("SH", "SH"), ("K", "KK"), ("R", "RR"), ("UW", "WW"), ("W", "WW"), ("AA", "AA"), ("EH", "EH"),
    ("IY", "IY"), ("OW", "OW"), ("SIL", "sil"), ("SPN", "noise"), ("??", "noise"), ("m", "PP"),
])
def test_phone_to_viseme(phone: str, viseme: str) -> None:
    assert viseme_of(phone) == viseme


def target(viseme: str, name: str) -> float:
    return VISEMES[viseme].target[MOUTH.index(name)]


def test_viseme_shapes_read_as_their_sounds() -> None:
    t = {k: dict(zip(("jaw", "press", "funnel", "pucker", "stretch", "up", "down"), v.target))
         for k, v in VISEMES.items()}
    assert t["AA"]["jaw"] > t["EH"]["jaw"] > t["IY"]["jaw"] > t["PP"]["jaw"]
    assert t["WW"]["pucker"] > 0.5 and t["OW"]["funnel"] > 0.5  # O/U round
    assert t["IY"]["stretch"] > 0.4 and t["IY"]["pucker"] == 0  # E/I spread
    assert t["PP"]["jaw"] <= CLOSURE_JAW and t["PP"]["press"] > 0 and t["PP"]["down"] == 0  # M/B/P shut
    assert t["FF"]["up"] > 0  # F/V show the upper teeth


def at(curves: dict[str, np.ndarray], name: str, seconds: float) -> float:
    return float(curves[name][int(round(seconds * FPS))])


def test_a_long_vowel_holds_its_shape() -> None:
    c = blend(phones(("SIL", 0.0, 0.5), ("OW", 0.5, 2.0), ("SIL", 2.0, 2.5)), int(2.5 * FPS), FPS)
    held = c["mouthFunnel"][int(0.8 * FPS):int(1.7 * FPS)]
    assert held.min() == pytest.approx(target("OW", "mouthFunnel"), abs=0.01)  # sung vowel: held, not pulsed
    assert at(c, "jawOpen", 1.2) == pytest.approx(target("OW", "jawOpen"), abs=0.01)


def test_lips_anticipate_the_sound() -> None:
    c = blend(phones(("SIL", 0.0, 1.0), ("AA", 1.0, 1.6), ("SIL", 1.6, 2.4)), 60, FPS)
    before = at(c, "jawOpen", 1.0 - ANTICIPATION_S)
    assert before > 0.5 * target("AA", "jawOpen")  # already half open as the sound starts
    assert at(c, "jawOpen", 0.6) < 0.05  # but not long before


def test_a_fast_bilabial_still_closes() -> None:
    """A 30 ms /m/ between open vowels: shorter than a frame, yet one frame shows shut lips."""
    c = blend(phones(("AA", 0.0, 0.503), ("M", 0.503, 0.533), ("AA", 0.533, 1.0)), 25, FPS)
    closed = np.flatnonzero(c["jawOpen"] <= CLOSURE_JAW)
    assert len(closed) >= 1
    assert all(c["lowerLipDown"][closed] == 0) and all(c["mouthFunnel"][closed] == 0)
    assert c["jawOpen"][:8].min() > 0.4 and c["jawOpen"][-8:].min() > 0.4  # the vowels stay open


def test_rounding_spreads_over_neutral_consonants() -> None:
    """In /s t u/ the lips round during the /t/ already: T leaves the lips to its neighbours."""
    c = blend(phones(("S", 0.0, 0.2), ("T", 0.2, 0.28), ("UW", 0.28, 0.6)), 15, FPS)
    assert at(c, "mouthPucker", 0.24) > 0.5 * target("WW", "mouthPucker")


def test_a_pause_relaxes_the_mouth_gradually() -> None:
    c = blend(phones(("AA", 0.0, 1.0), ("SIL", 1.0, 3.0)), 75, FPS)
    jaw = c["jawOpen"][int(1.0 * FPS) - 2:int(1.6 * FPS)]
    steps = np.abs(np.diff(jaw))
    assert steps.max() < 0.6 * target("AA", "jawOpen")  # no snap from open to shut in one frame
    assert at(c, "jawOpen", 2.0) < 0.02 and at(c, "lowerLipDown", 2.0) < 0.02  # settled at rest


def test_no_phones_is_rest() -> None:
    c = blend(Phones((), np.zeros(0), np.zeros(0)), 10, FPS)
    assert all(np.allclose(c[name], target("sil", name)) for name in MOUTH)


def test_mouth_curves_use_phones_and_fall_back_to_loudness() -> None:
    n = 50
    loud = np.r_[np.zeros(10), np.ones(30), np.zeros(10)].astype(np.float32)
    base = (FPS, loud, loud * 0 - 20, loud * 0, loud)
    with_phones = Features(*base, phones(("SIL", 0, 0.4), ("M", 0.4, 0.7), ("AA", 0.7, 1.6), ("SIL", 1.6, 2.0)))
    c = mouth_curves(with_phones)
    assert c["jawOpen"][int(0.5 * FPS)] <= CLOSURE_JAW and c["jawOpen"][int(1.2 * FPS)] > 0.4
    fallback = mouth_curves(Features(*base, None))
    assert fallback["jawOpen"][25] > 0.4 and fallback["jawOpen"][5] < 0.05
    for curves in (c, fallback):  # the photo's own lip gap is always removed: openings come from the speech
        assert np.all(curves["mouthClose"] == 1.0)


def test_voice_read_as_silence_still_opens_the_mouth() -> None:
    """The recogniser hears silence in 0.8-1.6 s but the voice is on and loud (a laugh, a burst it
    cannot parse): the mouth opens by loudness there, and only there; with the voice off it stays shut."""
    loud = np.r_[np.zeros(10), np.ones(40), np.zeros(10)].astype(np.float32)
    ph = phones(("SIL", 0, 0.4), ("AA", 0.4, 0.8), ("SIL", 0.8, 1.6), ("AA", 1.6, 2.0), ("SIL", 2.0, 2.4))
    on = mouth_curves(Features(FPS, loud, loud * 0 - 20, loud * 0, loud, ph))
    assert on["jawOpen"][int(1.2 * FPS)] > 0.3
    assert on["jawOpen"][5] < 0.05 and on["jawOpen"][-3] < 0.05
    off = mouth_curves(Features(FPS, loud, loud * 0 - 20, loud * 0, loud * 0, ph))
    assert off["jawOpen"][int(1.2 * FPS)] < 0.05
    assert np.array_equal(silent_frames(ph, 0, 60, FPS),
                          np.r_[np.ones(10), np.zeros(10), np.ones(20), np.zeros(10), np.ones(10)].astype(bool))


def test_the_closure_gate_shuts_the_lips_in_a_dip_within_speech() -> None:
    """27 dB under the peak: a dip to 30 dB (loudness 5/35) shuts, the peak and a dip to 20 dB stay
    open, a fricative as quiet in the speech band but bright keeps its opening (its hiss is loud),
    a pause is left to the visemes, and the ramp is GATE_RAMP_DB wide."""
    loud = np.array([1.0, 5 / 35, 15 / 35, 5 / 35, 5 / 35, (35 - 27 + GATE_RAMP_DB / 2) / 35])
    bright = np.array([0.0, 0.0, 0.0, 0.999, 0.0, 0.0])
    active = np.array([1.0, 1.0, 1.0, 1.0, 0.0, 1.0])
    assert np.allclose(closure_gate(loud, bright, active, 27.0), [1, 0, 1, 1, 1, 0.5])
    assert np.all(closure_gate(loud, bright, active, 0.0) == 1.0)  # 0: no gate


def test_a_closure_the_phones_missed_still_shuts_the_lips() -> None:
    """One long vowel as the recogniser read it, but the voice dips 30 dB for 0.12 s in the middle
    (an M it missed): with the gate the lips shut there and reopen after; without, they stay open."""
    n = 60
    loud = np.ones(n)
    loud[28:31] = 5 / 35
    f = Features(FPS, loud, loud * 0 - 20, loud * 0, np.ones(n), phones(("AA", 0.0, 2.4)))
    gated = MouthMotion(FPS, closure_db=27.0).run(f.phones, f.loudness, f.brightness, f.active)
    free = MouthMotion(FPS, closure_db=0.0).run(f.phones, f.loudness, f.brightness, f.active)
    for k in ("jawOpen", "lowerLipDown", "upperLipUp"):
        assert gated[k][30] < 0.1 * free[k][30]
        assert gated[k][35] > 0.9 * free[k][35] and gated[k][20] == pytest.approx(free[k][20])


def test_an_m_shuts_the_lips_from_its_murmur_on() -> None:
    """The words' M of "made" starts two frames after its voiced murmur does: voice read as silence,
    which the loudness fallback opens the mouth for. The M shuts the lips from the murmur on, over
    everything else that opens them; voice read as silence before a vowel still opens them."""
    loud = np.r_[np.zeros(10), np.ones(15)].astype(np.float32)
    ph = phones(("SIL", 0.0, 0.47), ("M", 0.47, 0.51), ("EY", 0.51, 1.0))
    c = mouth_curves(Features(FPS, loud, loud * 0 - 20, loud * 0, loud, ph))
    shut = int(np.ceil((0.47 - MouthMotion(FPS).anticipation_s) * FPS))  # the frame the M shuts: 12
    assert shut == 12
    for k in ("jawOpen", "lowerLipDown", "upperLipUp", "mouthFunnel"):
        assert np.all(c[k][10:13] == 0.0), k  # the murmur (frames 10, 11) and the M
    assert c["jawOpen"][shut + 3] > 0.2  # the vowel after it opens
    vowel = mouth_curves(Features(FPS, loud, loud * 0 - 20, loud * 0, loud, phones(("SIL", 0.0, 0.47), ("EY", 0.47, 1.0))))
    assert vowel["jawOpen"][11] > 0.1


def test_long_audio_is_linear() -> None:
    """An hour of phones blends in blocks: fast, and the same as blending a short piece."""
    rng = np.random.default_rng(0)
    d = rng.uniform(0.05, 0.2, 20000)
    ends = np.cumsum(d)
    labels = tuple(rng.choice(["AA", "M", "S", "UW", "SIL", "IY"], len(d)))
    long = Phones(labels, ends - d, ends)
    n = int(ends[-1] * FPS)
    c = blend(long, n, FPS)
    k = int(10 * FPS)
    short = Phones(labels[:200], (ends - d)[:200], ends[:200])
    np.testing.assert_allclose(blend(short, k, FPS)["jawOpen"][:100], c["jawOpen"][:100], atol=1e-9)


def test_recogniser_finds_speech_and_silence(voice: np.ndarray) -> None:
    """The built-in voice: phones with increasing times, silence in its pauses, vowels in its words."""
    p = recognise_phones(np.asarray(voice), 16000)
    assert len(p) > 50
    assert np.all(np.diff(p.starts) >= 0) and np.all(p.ends > p.starts)
    assert p.ends[-1] == pytest.approx(len(voice) / 16000, abs=0.1)
    assert "SIL" in p.labels and sum(viseme_of(x) in ("AA", "EH", "IY", "OW") for x in p.labels) > 15
    silent = recognise_phones(np.zeros(16000), 16000)
    assert set(silent.labels) <= {"SIL"}


def test_the_reach_sets_how_far_a_viseme_spreads() -> None:
    """A shorter reach (the fitted timing: crisper, as read speech is) leaves the mouth shut longer
    before a vowel and opens it as fully inside it."""
    p = phones(("SIL", 0.0, 1.0), ("AA", 1.0, 1.6), ("SIL", 1.6, 2.4))
    short, long = (blend(p, 60, FPS, reach_s=r, anticipation_s=0.015) for r in (0.04, 0.09))
    assert at(short, "jawOpen", 0.9) < 0.5 * at(long, "jawOpen", 0.9)
    assert at(short, "jawOpen", 1.3) == pytest.approx(target("AA", "jawOpen"), abs=0.01)
    assert at(long, "jawOpen", 1.3) < at(short, "jawOpen", 1.3) - 0.03


def test_mouth_motion_uses_the_fitted_coarticulation() -> None:
    from facetalk.motion.fitted import fitted

    reach, anticipation = fitted().coarticulation
    assert 0.02 <= reach <= 0.12 and 0.0 <= anticipation <= 0.05
    voiced = np.r_[np.zeros(25), np.ones(15), np.zeros(20)].astype(np.float32)  # the voice on for the AA only
    f = Features(FPS, *(np.full(60, v, np.float32) for v in (0.8, -20.0, 0.0)), voiced,
                 phones(("SIL", 0.0, 1.0), ("AA", 1.0, 1.6), ("SIL", 1.6, 2.4)))
    table = fitted().visemes
    want = blend(f.phones, 60, FPS, targets=table, reach_s=reach, anticipation_s=anticipation)["mouthStretch"]
    assert np.allclose(mouth_curves(f)["mouthStretchL"], want)
