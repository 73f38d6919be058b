"""Each evaluation metric on synthetic series whose answer is known in advance."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from facetalk.eval import signals
from facetalk.eval.head_pose import camera_matrix, head_angles, rigid_template
from facetalk.eval.mp_face import iris_offset
from facetalk.eval.run import loudest_dbfs

FPS = 25.0
RATE = 16000


def face68(gap: float = 10.0, eye_open: float = 10.0) -> np.ndarray:
    """A schematic 68-point face: face height 100 px (27 -> 8), outer eye corners 60 px apart,
    inner-lip gap `gap`, eye lids `eye_open` apart over a 30 px eye width."""
    lm = np.zeros((68, 2))
    lm[:17] = np.column_stack([np.linspace(-50, 50, 17), 60 - np.abs(np.linspace(-50, 50, 17)) * 0.4])
    lm[8] = (0, 100)
    lm[27:31] = [(0, 0), (0, 8), (0, 16), (0, 24)]
    lm[31:36] = [(-8, 30), (-4, 31), (0, 32), (4, 31), (8, 30)]
    for first, x0 in ((36, -30.0), (42, 0.0)):  # corner, two upper lid points, corner, two lower
        lm[first:first + 6] = [(x0, -5), (x0 + 10, -5 - eye_open / 2), (x0 + 20, -5 - eye_open / 2),
                               (x0 + 30, -5), (x0 + 20, -5 + eye_open / 2), (x0 + 10, -5 + eye_open / 2)]
    lm[36], lm[45] = (-30, -5), (30, -5)
    lm[48:60] = np.column_stack([18 * np.cos(np.linspace(0, 2 * np.pi, 13)[:-1]),
                                 50 + 8 * np.sin(np.linspace(0, 2 * np.pi, 13)[:-1])])
    lm[60:68] = [(-14, 50), (-6, 50 - gap / 2), (0, 50 - gap / 2), (6, 50 - gap / 2),
                 (14, 50), (6, 50 + gap / 2), (0, 50 + gap / 2), (-6, 50 + gap / 2)]
    return lm


def smooth_noise(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.convolve(rng.standard_normal(n + 8), np.ones(5) / 5, mode="valid")[:n]


def test_mouth_opening_is_gap_over_face_height():
    lm = np.stack([face68(gap=10.0), face68(gap=0.0), face68(gap=25.0)])
    np.testing.assert_allclose(signals.mouth_opening(lm), [0.10, 0.0, 0.25])


def test_mouth_opening_is_scale_free_and_nan_without_face():
    lm = np.stack([face68(gap=10.0) * 3.0 + 40, np.full((68, 2), np.nan)])
    out = signals.mouth_opening(lm)
    assert out[0] == pytest.approx(0.10)
    assert np.isnan(out[1])


def test_eye_aspect_ratio_known_geometry():
    assert signals.eye_aspect_ratio(face68(eye_open=10.0)) == pytest.approx(10.0 / 30.0)
    assert signals.eye_aspect_ratio(face68(eye_open=0.0)) == pytest.approx(0.0)


@pytest.mark.parametrize("shift", [3, 0, -2, 6])
def test_av_sync_recovers_a_known_lag(shift: int):
    sound = smooth_noise(300)
    mouth = np.roll(sound, shift)  # mouth[t + shift] == sound[t]
    corr, lag = signals.av_sync(mouth, sound, max_lag=6)
    assert lag == shift
    assert corr > 0.99


def test_av_sync_skips_nan_frames_and_reports_none_for_flat_input():
    sound = smooth_noise(200, seed=1)
    mouth = np.roll(sound, 2)
    mouth[50:60] = np.nan
    assert signals.av_sync(mouth, sound)[1] == 2
    corr, lag = signals.av_sync(np.zeros(100), sound[:100])
    assert lag is None and np.isnan(corr)


def test_speech_envelope_sees_the_speech_band_only():
    t = np.arange(4 * RATE) / RATE
    tone = np.where((t >= 1.0) & (t < 2.0), 0.3 * np.sin(2 * np.pi * 1000 * t), 0.0)
    hum = 0.3 * np.sin(2 * np.pi * 50 * t)  # loud, but below the speech band
    times = np.arange(100) / FPS
    env = signals.speech_envelope(tone + hum, RATE, times, 1 / FPS)
    inside, outside = env[(times > 1.1) & (times < 1.9)], env[(times < 0.9) | (times > 2.1)]
    assert inside.min() - outside.max() > 30.0  # dB
    assert env.max() - env.min() <= signals.ENVELOPE_FLOOR_DB + 1e-9


def test_envelope_and_mouth_give_the_av_offset_of_a_delayed_mouth():
    """Sound bursts at random frames; the mouth opens 3 frames after each: offset +3."""
    rng = np.random.default_rng(3)
    n = 250
    bursts = np.sort(rng.choice(np.arange(5, n - 10, 6), 25, replace=False))
    x = np.zeros(int(n / FPS * RATE))
    mouth = np.zeros(n)
    tt = np.arange(int(RATE / FPS * 2)) / RATE
    for b in bursts:
        i = int(b / FPS * RATE - RATE / FPS)  # a 2-frame burst centred on frame b
        x[i:i + len(tt)] += 0.5 * np.sin(2 * np.pi * 600 * tt)
        mouth[b + 3] = 1.0
    env = signals.speech_envelope(x + 1e-4 * rng.standard_normal(len(x)), RATE, np.arange(n) / FPS, 1 / FPS)
    assert signals.av_sync(mouth, env)[1] == 3


def test_resample_takes_the_nearest_frame_of_a_variable_rate_clip():
    times = np.array([0.0, 0.033, 0.1, 0.133, 0.2])
    values = np.arange(5.0)
    out = signals.resample(times, values, np.array([0.0, 0.04, 0.08, 0.19, 5.0]))
    np.testing.assert_array_equal(out[:4], [0, 1, 2, 4])
    assert np.isnan(out[4])  # far past the end


def test_similarity_fit_recovers_a_known_transform():
    rng = np.random.default_rng(0)
    src = rng.uniform(-50, 50, (11, 2))
    a = np.radians(12)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    dst = 1.7 * src @ rot.T + [30, -4]
    scale, r, shift = signals.similarity_fit(src, dst)
    assert scale == pytest.approx(1.7)
    np.testing.assert_allclose(r, rot, atol=1e-9)
    np.testing.assert_allclose(shift, [30, -4], atol=1e-9)


def test_lmd_ignores_pose_and_measures_the_mouth():
    real = np.stack([face68(gap=10.0)] * 3)
    a = np.radians(8)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    moved = real * 0.8 @ rot.T + [20, 5]  # the same face, elsewhere in the frame
    np.testing.assert_allclose(signals.mouth_landmark_distance(real, moved), 0.0, atol=1e-9)
    lowered = real.copy()
    lowered[:, list(signals.MOUTH)] += [0, 6.0]  # the whole mouth 6 px lower, IOD 60 px -> 10 %
    np.testing.assert_allclose(signals.mouth_landmark_distance(real, lowered), 10.0, atol=1e-6)


def test_mean_abs_delta_of_a_ramp():
    angles = np.column_stack([np.arange(50) * 0.5, np.zeros(50), -np.arange(50) * 0.2])
    assert signals.mean_abs_delta(angles) == pytest.approx((0.5 + 0 + 0.2) / 3)


def test_smoothing_keeps_slow_motion_and_removes_landmark_noise():
    t = np.arange(250) / FPS
    slow = np.column_stack([3 * np.sin(2 * np.pi * 0.5 * t)] * 3)  # a 2 s sway of ±3°
    noise = np.random.default_rng(0).normal(0, 1.0, slow.shape)
    assert signals.mean_abs_delta(signals.smooth_angles(noise, FPS)) < signals.mean_abs_delta(noise) / 4
    kept = signals.smooth_angles(slow, FPS)
    assert signals.mean_abs_delta(kept) == pytest.approx(signals.mean_abs_delta(slow), rel=0.05)
    np.testing.assert_allclose(np.std(kept, axis=0), np.std(slow, axis=0), rtol=0.05)
    gappy = slow.copy()
    gappy[40:45] = np.nan
    assert np.isnan(signals.smooth_angles(gappy, FPS)[40:45]).all()
    assert np.isfinite(signals.smooth_angles(gappy, FPS)[:40]).all()


def test_jitter_is_zero_for_smooth_motion_and_known_for_shake():
    base = face68()
    drift = np.stack([base + [0.5 * t, 0.2 * t] for t in range(40)])  # constant velocity
    assert signals.jitter(drift) == pytest.approx(0.0, abs=1e-9)
    shake = np.stack([base + [(-1) ** t * 0.6, 0] for t in range(40)])  # ±0.6 px every frame
    assert signals.jitter(shake) == pytest.approx(100 * 4 * 0.6 / 60.0)


def test_blinks_are_counted_and_slow_lid_changes_are_not():
    rng = np.random.default_rng(1)
    n = int(60 * FPS)
    ear = 0.30 + 0.01 * rng.standard_normal(n)
    dip = np.array([0.22, 0.12, 0.08, 0.12, 0.22])  # a 0.2 s blink
    starts = np.arange(40, n - 40, int(4 * FPS))  # every 4 s: 15 per minute
    for s in starts:
        ear[s:s + 5] = dip
    blinks = signals.detect_blinks(ear, FPS)
    assert len(blinks) == len(starts)
    assert np.all(np.abs(blinks - (starts + 2)) <= 1)
    assert signals.blinks_per_minute(blinks, n, FPS) == pytest.approx(len(starts))

    squint = 0.30 - 0.15 * np.clip(np.sin(np.linspace(0, np.pi, n)), 0, None)  # slow narrowing
    assert len(signals.detect_blinks(squint, FPS)) == 0
    shut = np.full(n, 0.30)
    shut[500:600] = 0.05  # eyes closed for 4 s: not a blink
    assert len(signals.detect_blinks(shut, FPS)) == 0


def test_blinks_survive_missing_frames():
    ear = np.full(250, 0.3)
    ear[100:105] = [0.2, 0.1, 0.08, 0.1, 0.2]
    ear[10:20] = np.nan
    assert list(signals.detect_blinks(ear, FPS)) == [102]


def test_head_angles_recover_a_known_rotation():
    w = h = 512
    cam = camera_matrix(w, h)
    truth = [(0, 0, 0), (15, 0, 0), (0, -10, 0), (0, 0, 8), (-12, 6, -5)]
    lm = np.full((len(truth), 68, 2), np.nan)
    for t, (yaw, pitch, roll) in enumerate(truth):
        y, p, r = np.radians([yaw, pitch, roll])
        ry = np.array([[np.cos(y), 0, np.sin(y)], [0, 1, 0], [-np.sin(y), 0, np.cos(y)]])
        rx = np.array([[1, 0, 0], [0, np.cos(p), -np.sin(p)], [0, np.sin(p), np.cos(p)]])
        rz = np.array([[np.cos(r), -np.sin(r), 0], [np.sin(r), np.cos(r), 0], [0, 0, 1]])
        rvec = cv2.Rodrigues(ry @ rx @ rz)[0]
        pts, _ = cv2.projectPoints(rigid_template(), rvec, np.array([0.0, 0.0, 40.0]), cam, None)
        lm[t, list(signals.RIGID)] = pts[:, 0]
    np.testing.assert_allclose(head_angles(lm, w, h), np.array(truth, float), atol=0.1)


def test_head_angles_leave_frames_without_a_face_empty():
    lm = np.full((2, 68, 2), np.nan)
    assert np.isnan(head_angles(lm, 100, 100)).all()


def test_sharpness_drops_when_blurred():
    img = (np.random.default_rng(0).random((128, 128)) * 255).astype(np.uint8)
    blurred = cv2.GaussianBlur(img, (0, 0), 2.0)
    assert signals.laplacian_variance(blurred) < 0.1 * signals.laplacian_variance(img)


def test_psnr_of_known_noise_and_identical_areas():
    a = np.full((40, 40, 3), 100, np.uint8)
    b = a.copy()
    b[::2] += 10  # half the pixels off by 10: MSE 50
    mask = np.ones((40, 40), bool)
    assert signals.psnr(a, b, mask) == pytest.approx(10 * np.log10(255 ** 2 / 50))
    assert signals.psnr(a, a, mask) == 60.0
    assert signals.psnr(a, b, mask & ~np.ones_like(mask)) != signals.psnr(a, b, mask)  # empty mask: NaN


def test_iris_offset_in_eye_widths_and_free_of_roll():
    pts = np.zeros((478, 2))
    for iris, a, b, x0 in ((468, 33, 133, 100.0), (473, 362, 263, 200.0)):
        pts[a], pts[b] = (x0, 100), (x0 + 40, 100)
        pts[iris] = (x0 + 20 + 4, 100 - 2)  # 0.1 eye widths right, 0.05 up
    np.testing.assert_allclose(iris_offset(pts), [0.1, -0.05])
    a = np.radians(20)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    np.testing.assert_allclose(iris_offset(pts @ rot.T), [0.1, -0.05], atol=1e-12)


def test_loudest_dbfs():
    t = np.arange(RATE) / RATE
    assert loudest_dbfs(0.1 * np.sin(2 * np.pi * 440 * t)) == pytest.approx(20 * np.log10(0.1 / np.sqrt(2)), abs=0.1)
    assert loudest_dbfs(np.zeros(RATE)) < -150


def synthetic_measure(name: str, mouth_gaps: np.ndarray, ids: list[float], shift: float = 0.0):
    """A ClipMeasure built from schematic faces: yaw swings ±2° (sd √2), gaze alternates ±0.05."""
    from facetalk.eval.measure import ClipMeasure
    from facetalk.eval.series import ClipSeries

    n = len(mouth_gaps)
    lm = np.stack([face68(gap=g) + [200 + shift, 150] for g in mouth_gaps])
    angles = np.column_stack([2 * np.sin(np.arange(n) * np.pi / 2), np.zeros(n), np.zeros(n)])
    gaze = np.column_stack([0.05 * (-1.0) ** np.arange(n), np.zeros(n)])
    series = ClipSeries(name, np.arange(n) / FPS, FPS, (512, 512), lm, signals.mouth_opening(lm), angles,
                        signals.eye_aspect_ratio(lm), np.array([10, 60]), np.asarray(mouth_gaps, float), gaze)
    return ClipMeasure(series, np.full(n, 0.9), np.full(n - 1, 40.0), np.asarray(ids), [])


def test_clip_and_paired_metrics_aggregate_known_series():
    from facetalk.eval.metrics import clip_metrics, paired_metrics

    gaps = np.abs(smooth_noise(150, seed=4)) * 10
    real = synthetic_measure("real", gaps, [0.3, 0.7])
    m = clip_metrics(real)
    assert m["id_distance"] == pytest.approx(0.5) and m["id_match"] == pytest.approx(0.5)
    assert m["yaw_sd"] == pytest.approx(np.sqrt(2), rel=0.02) and m["pitch_sd"] == 0.0
    assert m["dP"] == pytest.approx(2 * 1.0 / 3)  # |Δyaw| = 2° every frame, pitch and roll still
    assert m["gaze_sd"] == pytest.approx(5.0)
    assert m["blinks_per_min"] == pytest.approx(2 / (150 / FPS / 60))
    assert m["av_offset_frames"] == 0 and m["av_corr"] > 0.99  # envelope = the gaps themselves
    assert m["sharpness_ratio"] == pytest.approx(0.9) and m["background_psnr"] == pytest.approx(40.0)
    assert m["jitter"] == pytest.approx(0.0, abs=1e-9)

    same = synthetic_measure("gen", gaps, [0.1], shift=37.0)  # same mouth, elsewhere in the frame
    p = paired_metrics(real.series, same.series)
    assert p["mouth_corr"] == pytest.approx(1.0) and p["lmd"] == pytest.approx(0.0, abs=1e-9)
    assert p["mouth_corr_synced"] == pytest.approx(1.0)  # the real clip is in sync: no shift
    other = synthetic_measure("gen", gaps[::-1].copy(), [0.1])
    assert paired_metrics(real.series, other.series)["mouth_corr"] < 0.5


def test_mouth_corr_synced_forgives_the_reference_its_own_lag():
    """A real clip whose lips run 3 frames behind its sound, against a generated mouth in sync
    with the sound: the plain correlation suffers, the synced one does not."""
    from dataclasses import replace

    from facetalk.eval.metrics import clip_metrics, paired_metrics

    gaps = np.abs(smooth_noise(150, seed=5)) * 10
    late = np.r_[np.full(3, gaps[0]), gaps[:-3]]
    measured = synthetic_measure("real", late, [0.3])
    real = replace(measured, series=replace(measured.series, envelope=gaps))
    assert clip_metrics(real)["av_offset_frames"] == 3
    p = paired_metrics(real.series, synthetic_measure("gen", gaps, [0.1]).series)
    assert p["mouth_corr_synced"] == pytest.approx(1.0)
    assert p["mouth_corr"] < 0.9


# ---------------------------------------------------------------------------------------------
# amplitude and dynamics


def with_brows(lm: np.ndarray, brow: float = 20.0) -> np.ndarray:
    """face68 with brows `brow` px above the eye centres (both at y = -5)."""
    lm = lm.copy()
    lm[17:22] = np.column_stack([np.linspace(-32, -2, 5), np.full(5, -5.0 - brow)])
    lm[22:27] = np.column_stack([np.linspace(2, 32, 5), np.full(5, -5.0 - brow)])
    return lm


def rotate(lm: np.ndarray, degrees: float, about=(0.0, 40.0)) -> np.ndarray:
    a = np.radians(degrees)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    return (lm - about) @ rot.T + about


def test_mouth_open_sd_and_range_of_a_sine():
    n, period, amp = 1000, 50, 4.0  # 20 whole periods of a ±4 px gap around 10 px; face height 100 px
    gaps = 10.0 + amp * np.sin(2 * np.pi * np.arange(n) / period)
    mouth = signals.mouth_opening(np.stack([face68(gap=g) for g in gaps]))
    assert signals.spread(mouth) == pytest.approx(amp / np.sqrt(2) / 100, rel=1e-3)
    # p95 - p5 of a sine of amplitude A: 2 A sin(0.45 π)
    assert signals.percentile_range(mouth) == pytest.approx(2 * amp * np.sin(0.45 * np.pi) / 100, rel=0.01)
    mouth[::7] = np.nan  # frames without a face do not count
    assert signals.spread(mouth) == pytest.approx(amp / np.sqrt(2) / 100, rel=0.01)
    assert np.isnan(signals.spread(np.array([0.1, np.nan]))) and np.isnan(signals.percentile_range(np.zeros(2)))


def test_lip_dynamics_sees_mouth_motion_not_head_motion():
    n = 200
    base = face68(gap=10.0)
    centre = base[list(signals.MOUTH)].mean(0)
    scale = 1.0 + 0.1 * np.sin(2 * np.pi * np.arange(n) / 25)

    def talking(depth: float) -> np.ndarray:
        out = np.stack([base] * n)
        s = 1.0 + depth * (scale - 1.0)
        out[:, list(signals.MOUTH)] = centre + (base[list(signals.MOUTH)] - centre) * s[:, None, None]
        return out

    lm = talking(1.0)
    pts = base[list(signals.MOUTH)]
    i, j = np.triu_indices(20, k=1)
    d0 = np.linalg.norm(pts[i] - pts[j], axis=1) / 60.0  # every distance scales with the mouth
    assert signals.lip_dynamics(lm) == pytest.approx(1000 * scale.var() * np.mean(d0 ** 2), rel=1e-6)
    assert signals.lip_dynamics(talking(0.5)) == pytest.approx(signals.lip_dynamics(lm) / 4, rel=1e-6)
    # a still mouth on a head that turns, moves and comes closer to the camera: no lip dynamics
    moving = np.stack([rotate(base, 10 * np.sin(t / 9)) * (1 + 0.2 * np.sin(t / 13)) + [3 * t, 0] for t in range(n)])
    assert signals.lip_dynamics(moving) == pytest.approx(0.0, abs=1e-9)
    lm[50:60] = np.nan  # frames without a face are left out
    assert np.isfinite(signals.lip_dynamics(lm))
    assert np.isnan(signals.lip_dynamics(np.full((5, 68, 2), np.nan)))


def pauses_envelope(n: int = 250) -> np.ndarray:
    """Speech at -20 dB, with pauses at -60 dB: frames 0-20 (clip start), 50-75 (1 s), 150-160
    (0.4 s), and a 0.2 s dip at 100-105 that is too short to be a pause."""
    env = np.full(n, -20.0)
    for a, b in ((0, 20), (50, 75), (100, 105), (150, 160)):
        env[a:b] = -60.0
    return env


def test_speech_pauses_are_long_deep_dips_less_their_edges_next_to_speech():
    env = pauses_envelope()
    # 0.1 s at 25 fps = 2 frames off each end that touches speech; the clip's start is no speech edge
    assert signals.speech_pauses(env, FPS) == [(0, 18), (52, 73), (152, 158)]
    assert signals.speech_pauses(env + 10 * (env < -30), FPS) == [(0, 18), (52, 73), (152, 158)]  # 30 dB under
    assert signals.speech_pauses(env * 0 - 20, FPS) == []  # talking throughout
    shallow = np.where(env < -30, -40.0, -20.0)  # 20 dB under the speech: noisy room, not a pause
    assert signals.speech_pauses(shallow, FPS) == []


def test_silent_lip_mad_measures_twitching_in_pauses_only():
    env = pauses_envelope()
    n = len(env)
    rng = np.random.default_rng(0)
    mouth = 0.05 + 0.04 * np.abs(np.sin(np.arange(n) / 2))  # talking: big moves
    delta = 0.003
    for (a, b), level in zip(signals.speech_pauses(env, FPS), (0.01, 0.02, 0.03)):
        mouth[a:b] = level + delta * (-1.0) ** np.arange(b - a)  # each pause at its own rest level
    mouth[50:52] = 0.09  # the mouth closing after the word: inside the 0.1 s margin, not counted
    mouth[100:105] = 0.0  # a 0.2 s dip is a stop closure, not a pause
    assert signals.silent_lip_mad(mouth, env, FPS) == pytest.approx(delta)
    # Gaussian twitches of sd σ in two 20 s pauses: MAD = 0.6745 σ
    long_env = np.full(2000, -20.0)
    long_env[100:600] = long_env[1000:1500] = -60.0
    still = 0.05 + 0.04 * np.abs(np.sin(np.arange(2000) / 2))
    for a, b in signals.speech_pauses(long_env, FPS):
        still[a:b] = 0.02 + rng.normal(0, 0.004, b - a)
    assert signals.silent_lip_mad(still, long_env, FPS) == pytest.approx(0.6745 * 0.004, rel=0.06)
    assert np.isnan(signals.silent_lip_mad(mouth, np.full(n, -20.0), FPS))  # no pause


def test_lip_closures_are_shut_lips_within_speech_not_in_pauses():
    env = pauses_envelope()  # speech at 20-50, 75-100, 105-150; pauses 0-20, 50-75, 150-160
    n = len(env)
    mouth = 0.05 + 0.04 * np.abs(np.sin(np.arange(n) / 2))  # talking, never under 5 %
    mouth[env < -30] = 0.0  # shut in every pause and in the 0.2 s stop at 100-105: only that one counts
    mouth[30:32] = 0.02  # an M within a word
    mouth[120] = 0.025  # a B, read at the threshold
    mouth[140:142] = 0.03  # a W's rounding, still parted
    assert signals.lip_closures(mouth, env, FPS) == [(30, 32), (100, 105), (120, 121)]
    assert signals.lip_closures(mouth, np.full(n, np.nan), FPS) == []


def test_closure_recall_counts_the_real_closures_the_generated_lips_match():
    env = pauses_envelope()
    n = len(env)
    real = 0.05 + 0.04 * np.abs(np.sin(np.arange(n) / 2))
    for a, b in ((30, 32), (80, 82), (120, 122), (130, 132)):
        real[a:b] = 0.01
    gen = 0.06 + 0.0 * real
    gen[33] = 0.0  # one frame after the real M ended: within the slack
    gen[84:86] = 0.02  # 3 frames after: too late
    gen[120:122] = 0.03  # nearly shut is not shut
    gen[128] = np.nan  # a frame without a face is not a closure
    assert signals.closure_recall(real, gen, env, FPS) == pytest.approx(1 / 4)
    gen[130] = 0.0
    assert signals.closure_recall(real, gen, env, FPS) == pytest.approx(2 / 4)
    assert signals.closure_recall(real, real, env, FPS) == pytest.approx(1.0)
    assert np.isnan(signals.closure_recall(np.full(n, 0.08), gen, env, FPS))  # the real lips never shut


def test_bilabials_shut_counts_the_m_b_p_the_lips_close_on():
    fps = 25.0
    mouth = np.full(100, 0.07)  # talking, parted throughout
    spans = np.array([[0.40, 0.48],  # frames 10, 11 lie within it
                      [1.01, 1.03],  # between frames 25 and 26: no frame within it
                      [2.00, 2.12],  # frames 50-52
                      [3.00, 3.08]])  # frames 75, 76
    assert signals.bilabials_shut(mouth, spans, fps) == 0.0
    mouth[12] = 0.02  # one frame after the first phone: within the slack
    mouth[26] = 0.0  # the frame after the short one
    mouth[54] = 0.0  # two frames after the third: too late
    mouth[75] = 0.03  # nearly shut is not shut
    assert signals.bilabials_shut(mouth, spans, fps) == pytest.approx(2 / 4)
    mouth[74] = np.nan  # a frame without a face is not a closure
    assert signals.bilabials_shut(mouth, spans, fps) == pytest.approx(2 / 4)
    mouth[76] = 0.025  # at the threshold counts
    assert signals.bilabials_shut(mouth, spans, fps) == pytest.approx(3 / 4)
    # without slack: the last, and the short one (a phone between two frames is read at the next)
    assert signals.bilabials_shut(mouth, spans, fps, slack=0) == pytest.approx(2 / 4)
    assert signals.bilabials_shut(mouth, spans[:1], fps) == 1.0
    assert np.isnan(signals.bilabials_shut(mouth, np.zeros((0, 2)), fps))  # no M, B or P in the words
    assert signals.bilabials_shut(mouth, np.array([[5.0, 5.1]]), fps) == 0.0  # after the last frame: missed


def test_brow_height_ignores_head_roll():
    n, iod = 200, 60.0
    t = np.arange(n)
    raise_px = 6.0 * np.sin(2 * np.pi * t / 40)
    roll = 15.0 * np.sin(2 * np.pi * t / 67)
    base = face68()
    raised = np.stack([rotate(with_brows(base, 20 + r), a) * 1.3 + [100, 50] for r, a in zip(raise_px, roll)])
    height = signals.brow_height(raised)
    np.testing.assert_allclose(height, (20 + raise_px) / iod, atol=1e-9)
    assert signals.spread(height) == pytest.approx(raise_px.std() / iod)
    tilting = np.stack([rotate(with_brows(base, 20), a) for a in roll])  # brows still, head rolls ±15°
    assert signals.spread(signals.brow_height(tilting)) == pytest.approx(0.0, abs=1e-9)


def open_jaw(lm: np.ndarray, drop: float) -> np.ndarray:
    """The jaw opened by `drop` px: lower lip down by `drop`, mouth corners by half of it."""
    lm = lm.copy()
    lm[[55, 56, 57, 58, 59, 65, 66, 67]] += [0, drop]
    lm[[48, 54, 60, 64]] += [0, drop / 2]
    return lm


def test_corner_lift_sees_a_smile_not_speech_nor_roll():
    base = face68(gap=0.0)
    assert signals.corner_lift(base) == pytest.approx(0.0)
    speaking = np.stack([open_jaw(base, d) for d in np.linspace(0, 20, 30)])
    np.testing.assert_allclose(signals.corner_lift(speaking), 0.0, atol=1e-9)
    smile = base.copy()
    smile[[48, 54]] -= [0, 3.0]  # corners up 3 px; IOD 60 px
    assert signals.corner_lift(smile) == pytest.approx(0.05)
    tilted = np.stack([rotate(smile, a) for a in (-20, -5, 0, 12, 25)])
    np.testing.assert_allclose(signals.corner_lift(tilted), 0.05, atol=1e-9)
    assert signals.mouth_width(base) == pytest.approx(36 / 60)
    assert signals.mouth_width(rotate(base, 30) * 2) == pytest.approx(36 / 60)


def test_eye_open_sd_leaves_blinks_out():
    n = 500
    ear = 0.3 + 0.02 * np.sin(2 * np.pi * np.arange(n) / 50)
    blinks = np.array([60, 200, 420])
    keep = np.ones(n, bool)
    for b in blinks:
        ear[b - 2:b + 3] = [0.2, 0.1, 0.05, 0.1, 0.2]
        keep[b - 2:b + 3] = False
    assert signals.eye_open_sd(ear, blinks) == pytest.approx(ear[keep].std())
    assert signals.eye_open_sd(ear, blinks) == pytest.approx(0.02 / np.sqrt(2), rel=0.05)
    assert signals.spread(ear) > 2 * signals.eye_open_sd(ear, blinks)  # blinks would swamp it
    assert signals.eye_open_sd(ear, np.zeros(0, np.int64)) == pytest.approx(signals.spread(ear))


def test_slow_share_splits_turns_from_nods():
    t = np.arange(int(20 * FPS)) / FPS
    turns, nods = 3.0 * np.sin(2 * np.pi * 0.2 * t), 1.0 * np.sin(2 * np.pi * 3.0 * t)
    assert signals.slow_share(turns + nods, FPS) == pytest.approx(9 / (9 + 1), abs=0.01)
    assert signals.slow_share(turns, FPS) == pytest.approx(1.0, abs=0.01)
    assert signals.slow_share(nods, FPS) == pytest.approx(0.0, abs=0.01)
    assert signals.slow_share(turns + nods + 10.0, FPS) == pytest.approx(0.9, abs=0.01)  # the level is no motion
    gappy = turns + nods
    gappy[100:110] = np.nan
    assert signals.slow_share(gappy, FPS) == pytest.approx(0.9, abs=0.02)
    assert np.isnan(signals.slow_share(np.zeros(100), FPS))  # still
    assert np.isnan(signals.slow_share(turns[:10], FPS))  # under a second


def test_amplitude_metrics_in_clip_metrics():
    from facetalk.eval.metrics import clip_metrics

    n = 250
    gaps = 10.0 + 4.0 * np.sin(2 * np.pi * np.arange(n) / 50)
    m = clip_metrics(synthetic_measure("real", gaps, [0.3]))
    assert m["mouth_open_sd"] == pytest.approx(4.0 / np.sqrt(2), rel=1e-3)  # % of the 100 px face height
    assert m["mouth_open_range"] == pytest.approx(2 * 4.0 * np.sin(0.45 * np.pi), rel=0.01)
    assert m["brow_sd"] == pytest.approx(0.0, abs=1e-9) and m["smile_sd"] == pytest.approx(0.0, abs=1e-9)
    assert m["mouth_width_sd"] == pytest.approx(0.0, abs=1e-9)
    assert m["eye_open_sd"] == pytest.approx(0.0, abs=1e-9)
    assert m["lip_dynamics"] > 0
    assert m["silent_lip_mad"] is None  # the envelope (the gaps themselves) has no pause
    assert m["yaw_slow_share"] < 0.05  # yaw swings every 4 frames: fast, but for the filter's start-up
    assert m["pitch_slow_share"] is None  # a still angle has no share


def test_reject_outliers_drops_landmark_failures_and_keeps_motion():
    n = 400
    t = np.arange(n)
    wave = 0.3 + 0.02 * np.sin(2 * np.pi * t / 40)
    np.testing.assert_array_equal(signals.reject_outliers(wave), wave)  # a sine's peaks stay
    glitched = wave.copy()
    bad = [30, 31, 150, 151, 152, 300]
    glitched[bad] = 0.2  # dlib drops the brows 10 % IOD for a few frames
    kept = signals.reject_outliers(glitched)
    assert np.isnan(kept[bad]).all() and np.isfinite(np.delete(kept, bad)).all()
    assert signals.spread(glitched) > 1.25 * signals.spread(wave)  # 6 frames of 400 add a quarter
    assert signals.expression_spread(glitched) == pytest.approx(signals.spread(wave), rel=0.02)
    flat = np.full(50, 0.3)
    flat[10] = 0.5  # MAD zero: nothing to judge by, nothing dropped
    assert np.isfinite(signals.reject_outliers(flat)).all()


def test_without_pitch_removes_what_follows_the_nod():
    n = 500
    t = np.arange(n) / FPS
    raise_ = 0.04 * np.sin(2 * np.pi * 0.3 * t)  # brows: 0.3 Hz, pitch: 0.7 Hz, whole periods of both
    pitch = 8.0 * np.sin(2 * np.pi * 0.7 * t)
    seen = 0.25 + raise_ - 0.15 * np.sin(np.radians(pitch))  # the nod's leak, 0.26 % IOD per degree
    assert signals.spread(seen) > 1.1 * raise_.std()
    np.testing.assert_allclose(signals.without_pitch(seen, pitch) - 0.25, raise_, atol=1e-3)
    assert signals.expression_spread(seen, pitch) == pytest.approx(raise_.std(), rel=0.02)
    np.testing.assert_array_equal(signals.without_pitch(seen, np.zeros(n)), seen)  # still head: untouched
    gappy = pitch.copy()
    gappy[:20] = np.nan
    assert np.isfinite(signals.without_pitch(seen, gappy)).all()
