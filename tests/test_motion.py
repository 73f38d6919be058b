"""motion: the MotionTrack container, the generator's behaviour and its small pure helpers."""

from __future__ import annotations

import numpy as np
import pytest

from facetalk.audio.features import Features, audio_features
from facetalk.motion.controls import Controls
from facetalk.motion.eyes import CLOSE_S, HOLD_S, ONSET_BLINK_S, OPEN_S, EyeMotion, blink_shape
from facetalk.motion.generate import MotionGenerator, generate
from facetalk.motion.head import ou_process
from facetalk.motion.mouth import follow_envelope
from facetalk.motion.track import COLUMNS, EXPRESSIONS, GAZE, POSE, Motion, MotionTrack

RATE = 16000
FPS = 25.0
ANGLES = ("yaw", "pitch", "roll")


def speechlike(seconds: float, seed: int = 0) -> np.ndarray:
    """Syllable-like harmonic bursts (120-250 ms) in phrases of 1-3 s separated by 0.4-1 s pauses."""
    rng = np.random.default_rng(seed)
    out = np.zeros(int(seconds * RATE), np.float32)
    t = 0.2
    while t < seconds - 0.5:
        end = min(t + rng.uniform(1.0, 3.0), seconds - 0.2)
        while t < end:
            syl = rng.uniform(0.12, 0.25)
            n, i0 = int(syl * RATE), int(t * RATE)
            tt = np.arange(n) / RATE
            f0 = rng.uniform(100, 180)
            x = sum(np.sin(2 * np.pi * f0 * k * tt) / k for k in range(1, 12))
            burst = 0.3 * np.sin(np.pi * tt / syl) ** 2 * x
            out[i0:i0 + n] += burst[: len(out) - i0].astype(np.float32)
            t += syl + rng.uniform(0.02, 0.08)
        t += rng.uniform(0.4, 1.0)
    return out


@pytest.fixture(scope="module")
def speech(voice: np.ndarray) -> Features:
    return audio_features([voice], RATE, FPS)


@pytest.fixture(scope="module")
def silence(voice: np.ndarray) -> Features:
    return audio_features([np.zeros_like(voice)], RATE, FPS)


@pytest.fixture(scope="module")
def minute_of_bursts() -> Features:
    return audio_features([speechlike(60.0)], RATE, FPS)


def blink_count(curve: np.ndarray) -> int:
    closed = curve > 0.5
    return int(np.sum(closed[1:] & ~closed[:-1]) + closed[0])


# --- MotionTrack -----------------------------------------------------------------------------

def test_columns_are_pose_expressions_gaze() -> None:
    assert COLUMNS == POSE + EXPRESSIONS + GAZE
    assert len(set(COLUMNS)) == len(COLUMNS)
    for name in ("jawOpen", "eyeBlinkL", "eyeBlinkR", "mouthSmileL", "browInnerUp"):
        assert name in EXPRESSIONS


@pytest.mark.parametrize("shape", [(10,), (10, len(COLUMNS) - 1), (10, len(COLUMNS) + 1), (2, 3, len(COLUMNS))])
def test_track_rejects_wrong_shapes(shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match="expected"):
        MotionTrack(np.zeros(shape, np.float32), 25.0)


@pytest.mark.parametrize("fps", [0.0, -25.0])
def test_track_rejects_non_positive_fps(fps: float) -> None:
    with pytest.raises(ValueError, match="fps"):
        MotionTrack(np.zeros((3, len(COLUMNS)), np.float32), fps)


def test_neutral_track() -> None:
    track = MotionTrack.neutral(50, 25.0)
    assert len(track) == 50
    assert track.values.shape == (50, len(COLUMNS))
    assert track.duration == pytest.approx(2.0)
    assert np.all(track.column("scale") == 1.0)
    for name in COLUMNS:
        if name != "scale":
            assert np.all(track.column(name) == 0.0), name


def test_column_access_reads_the_named_column() -> None:
    values = np.arange(4 * len(COLUMNS), dtype=np.float32).reshape(4, len(COLUMNS))
    track = MotionTrack(values, 30.0)
    for i, name in enumerate(COLUMNS):
        assert np.array_equal(track.column(name), values[:, i])
    with pytest.raises(KeyError):
        track.column("noSuchCurve")


def test_with_columns_copies_and_replaces() -> None:
    track = MotionTrack.neutral(5, 25.0)
    jaw = np.linspace(0, 1, 5, dtype=np.float32)
    new = track.with_columns(jawOpen=jaw, yaw=3.0)
    assert np.allclose(new.column("jawOpen"), jaw)
    assert np.all(new.column("yaw") == 3.0)
    assert np.all(new.column("scale") == 1.0)  # untouched columns kept
    assert new.fps == track.fps
    # the original is unchanged
    assert np.all(track.column("jawOpen") == 0.0) and np.all(track.column("yaw") == 0.0)
    with pytest.raises(KeyError):
        track.with_columns(notAColumn=1.0)


def test_slice() -> None:
    values = np.random.default_rng(0).random((20, len(COLUMNS))).astype(np.float32)
    track = MotionTrack(values, 25.0)
    part = track.slice(5, 12)
    assert len(part) == 7 and part.fps == 25.0
    assert np.array_equal(part.values, values[5:12])
    assert np.array_equal(part.column("jawOpen"), track.column("jawOpen")[5:12])


def test_frame_unpacks_every_field() -> None:
    values = np.random.default_rng(1).random((3, len(COLUMNS))).astype(np.float32)
    track = MotionTrack(values, 25.0)
    m = track.frame(2)
    assert isinstance(m, Motion)
    for name in POSE:
        assert getattr(m, name) == pytest.approx(float(track.column(name)[2]))
    assert m.gaze_yaw == pytest.approx(float(track.column("gazeYaw")[2]))
    assert m.gaze_pitch == pytest.approx(float(track.column("gazePitch")[2]))
    expr = m.expressions()
    assert expr.shape == (len(EXPRESSIONS),)
    for i, name in enumerate(EXPRESSIONS):
        assert expr[i] == pytest.approx(float(track.column(name)[2]))


def test_neutral_motion() -> None:
    m = Motion.neutral()
    assert (m.yaw, m.pitch, m.roll, m.tx, m.ty, m.scale) == (0, 0, 0, 0, 0, 1)
    assert np.array_equal(m.expressions(), np.zeros(len(EXPRESSIONS)))
    assert m.expressions().dtype == np.float32


# --- Controls ----------------------------------------------------------------------------------

@pytest.mark.parametrize("bad", [5.0, -0.1, 3.01])
def test_controls_reject_out_of_range_intensity(bad: float) -> None:
    with pytest.raises(ValueError, match="motion_intensity"):
        Controls(motion_intensity=bad)


def test_controls_accept_the_range_ends() -> None:
    assert Controls(motion_intensity=0.0).motion_intensity == 0.0
    assert Controls(motion_intensity=3.0).motion_intensity == 3.0


# --- generate ----------------------------------------------------------------------------------

def test_generate_shape_and_rate(speech: Features) -> None:
    track = generate(speech, Controls())
    assert isinstance(track, MotionTrack)
    assert len(track) == len(speech)
    assert track.fps == speech.fps
    assert track.values.dtype == np.float32
    assert np.all(np.isfinite(track.values))
    for name in EXPRESSIONS:
        curve = track.column(name)
        lo = -1.0 if name == "mouthClose" else 0.0
        assert curve.min() >= lo - 1e-6 and curve.max() <= 1.0 + 1e-6, name
    assert np.all(track.column("scale") == 1.0)


def test_same_seed_same_motion(speech: Features) -> None:
    a = generate(speech, Controls(seed=7))
    b = generate(speech, Controls(seed=7))
    assert np.array_equal(a.values, b.values)


def test_other_seed_other_motion(speech: Features) -> None:
    a = generate(speech, Controls(seed=7))
    b = generate(speech, Controls(seed=8))
    assert not np.allclose(a.column("yaw"), b.column("yaw"))
    # the lips follow the audio, not the seed
    assert np.array_equal(a.column("jawOpen"), b.column("jawOpen"))


def test_jaw_follows_loudness(speech: Features) -> None:
    jaw = generate(speech, Controls()).column("jawOpen")
    assert np.corrcoef(jaw, speech.loudness)[0, 1] > 0.5
    assert jaw.max() > 0.3  # the mouth really opens on speech
    quiet = speech.loudness < 0.05
    assert quiet.any()
    assert np.median(jaw[quiet]) < 0.5 * np.median(jaw[speech.loudness > 0.7])


def test_jaw_follows_loudness_on_synthetic_speech(minute_of_bursts: Features) -> None:
    jaw = generate(minute_of_bursts, Controls()).column("jawOpen")
    # The phones shape the opening and the loudness scales a fifth of it (fitted to real lips,
    # tools/fit_motion.py); bursts open the mouth, their silences shut it.
    assert np.corrcoef(jaw, minute_of_bursts.loudness)[0, 1] > 0.4


def test_silence_keeps_the_mouth_shut_but_the_face_alive(silence: Features) -> None:
    track = generate(silence, Controls(seed=3))
    assert np.all(np.abs(track.column("jawOpen")) < 1e-3)
    assert np.all(np.abs(track.column("lowerLipDown")) < 1e-3)
    for eye in ("eyeBlinkL", "eyeBlinkR"):
        assert track.column(eye).max() > 0.95  # blinks still happen, fully
        assert blink_count(track.column(eye)) >= 1
    head = np.stack([track.column(a) for a in ANGLES])
    assert np.abs(head).max() > 0.1  # degrees: the head is not frozen


def test_head_moves_less_in_silence_than_in_speech(speech: Features, silence: Features) -> None:
    def head_activity(features: Features, seed: int) -> float:
        track = generate(features, Controls(seed=seed))
        return float(sum(np.abs(np.diff(track.column(a))).mean() for a in ANGLES))

    for seed in range(3):
        quiet, talking = head_activity(silence, seed), head_activity(speech, seed)
        assert 0 < quiet < talking


def test_blink_rate_is_human(minute_of_bursts: Features) -> None:
    minutes = minute_of_bursts.duration / 60
    for seed in range(3):
        track = generate(minute_of_bursts, Controls(seed=seed))
        rate = blink_count(track.column("eyeBlinkL")) / minutes
        assert 8 <= rate <= 30, f"seed {seed}: {rate:.1f} blinks per minute"
        assert np.array_equal(track.column("eyeBlinkL"), track.column("eyeBlinkR"))


def test_a_blink_follows_the_voice_starting() -> None:
    """Silence, then speech: whatever the seed, a blink starts within ONSET_BLINK_S of the first
    voiced frame (a blink already due sooner comes then); a voice going on does not keep pulling
    them in."""
    fps = 25.0
    onset = int(2.0 * fps)
    active = np.r_[np.zeros(onset), np.ones(int(10 * fps))]
    for seed in range(20):
        eyes = EyeMotion(fps, np.random.default_rng(seed)).run(active, 1.0)["eyeBlinkL"]
        starts = np.flatnonzero((eyes[1:] > 0) & (eyes[:-1] == 0)) + 1
        after = starts[starts >= onset]
        assert after.size and (after[0] - onset) / fps <= ONSET_BLINK_S[1] + 1.0 / fps, f"seed {seed}: {starts / fps}"
        assert 1 <= after.size <= 8, f"seed {seed}: {after.size} blinks in 10 s of speech"


def test_blink_can_be_turned_off(speech: Features, silence: Features) -> None:
    for features in (speech, silence):
        track = generate(features, Controls(blink=False))
        assert np.all(track.column("eyeBlinkL") == 0.0)
        assert np.all(track.column("eyeBlinkR") == 0.0)


def test_zero_intensity_holds_the_head_still(speech: Features) -> None:
    track = generate(speech, Controls(motion_intensity=0.0))
    for a in ANGLES:
        assert np.all(track.column(a) == 0.0), a
    assert track.column("jawOpen").max() > 0.3  # the mouth still talks


def test_intensity_scales_head_motion(speech: Features) -> None:
    one = generate(speech, Controls(seed=2, motion_intensity=1.0))
    two = generate(speech, Controls(seed=2, motion_intensity=2.0))
    for a in ANGLES:
        assert np.allclose(two.column(a), 2 * one.column(a), atol=1e-4)


def test_gaze_counter_rotates_against_the_head(speech: Features) -> None:
    """With the head still, gaze is the fixations alone; moving the head subtracts its angles."""
    still = generate(speech, Controls(seed=4, motion_intensity=0.0))
    moving = generate(speech, Controls(seed=4, motion_intensity=1.0))
    assert np.allclose(moving.column("gazeYaw") + moving.column("yaw"), still.column("gazeYaw"), atol=1e-3)
    assert np.allclose(moving.column("gazePitch") + moving.column("pitch"), still.column("gazePitch"), atol=1e-3)


@pytest.mark.parametrize("seconds", [0.04, 0.3,
                                     0.48, 0.6])
def test_generate_on_short_clips(voice: np.ndarray, seconds: float) -> None:
    """Audio as short as the readers accept (0.1 s) must still give one motion frame per video frame."""
    features = audio_features([voice[: int(seconds * RATE)]], RATE, FPS)
    assert len(features) == round(seconds * FPS)
    track = generate(features, Controls())
    assert len(track) == len(features) and np.all(np.isfinite(track.values))


# --- helpers -----------------------------------------------------------------------------------

def test_follow_envelope_rises_faster_than_it_falls() -> None:
    fps = 100.0
    step = np.concatenate([np.zeros(5), np.ones(60), np.zeros(60)])
    y = follow_envelope(step, fps, attack_s=0.025, release_s=0.06)
    assert y.shape == step.shape
    assert np.all(y[:5] == 0)
    rise = int(np.argmax(y[5:] >= 0.9))  # frames to reach 90 % after the step up
    fall = int(np.argmax(y[65:] <= 0.1))  # frames to drop to 10 % after the step down
    assert y[64] > 0.99 and y[-1] < 0.01
    assert 0 < rise < fall
    assert np.all((y >= 0) & (y <= 1))


def test_follow_envelope_with_equal_constants_is_symmetric() -> None:
    step = np.concatenate([np.ones(40), np.zeros(40)])
    y = follow_envelope(step, 50.0, 0.05, 0.05)
    assert np.allclose(y[:40], 1 - y[40:], atol=1e-9)


def test_blink_shape() -> None:
    dt = 0.001
    t = np.arange(-0.1, 0.6, dt)
    lid = blink_shape(t)
    assert np.all(lid[t < 0] == 0)
    assert lid.max() == pytest.approx(1.0)
    assert np.all(lid[(t >= CLOSE_S) & (t <= CLOSE_S + HOLD_S)] == pytest.approx(1.0))
    assert np.all(lid[t >= CLOSE_S + HOLD_S + OPEN_S + dt] == pytest.approx(0.0, abs=1e-9))
    assert np.all((lid >= 0) & (lid <= 1))
    # closing (10 % -> 90 %) is faster than opening (90 % -> 10 %)
    peak = int(np.argmax(lid))
    up, down = lid[: peak + 1], lid[peak:]
    closing = (np.argmax(up >= 0.9) - np.argmax(up >= 0.1)) * dt
    opening = (np.argmax(down <= 0.1) - np.argmax(down <= 0.9)) * dt
    assert 0 < closing < opening


def test_ou_process_is_seeded() -> None:
    a = ou_process(500, 25.0, 2.0, 1.5, np.random.default_rng(11))
    b = ou_process(500, 25.0, 2.0, 1.5, np.random.default_rng(11))
    c = ou_process(500, 25.0, 2.0, 1.5, np.random.default_rng(12))
    assert a.shape == (500,)
    assert np.array_equal(a, b)
    assert not np.allclose(a, c)


def test_ou_process_spread_matches_sd() -> None:
    sd = 2.0
    x = ou_process(200_000, 25.0, sd, 1.6, np.random.default_rng(5))
    assert np.std(x) == pytest.approx(sd, rel=0.1)
    assert abs(np.mean(x)) < 0.25 * sd
    # it is smooth (strongly correlated frame to frame), not white noise
    assert np.corrcoef(x[:-1], x[1:])[0, 1] > 0.9


@pytest.mark.parametrize("chunk", [1, 3, 40])
def test_chunked_generation_is_the_same_motion(speech: Features, chunk: int) -> None:
    """A live stream feeds the generator a few frames at a time: it must make the very same motion
    as the whole file at once (same features, same controls, same seed)."""
    controls = Controls(seed=4, emotion="happy:0.5", gaze=(5.0, -3.0))
    whole = generate(speech, controls)
    g = MotionGenerator(controls, speech.fps)
    parts = [g.push(speech.frames(a, a + chunk)) for a in range(0, len(speech), chunk)]
    chunked = MotionTrack.concat(parts + [g.finish()])
    assert len(chunked) == len(whole) == len(speech)
    np.testing.assert_allclose(chunked.values, whole.values, atol=1e-5)
