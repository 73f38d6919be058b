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
