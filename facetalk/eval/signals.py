"""Pure functions from landmark, audio and image series to the numbers of the evaluation.

Nothing here knows how a video was made: real and generated clips pass through the same code.
Landmarks are dlib's 68 points (iBUG 300-W numbering), (T, 68, 2) in pixels, NaN where no face
was found; every function tolerates those gaps.
"""

from __future__ import annotations

import numpy as np
from scipy import signal

# iBUG 300-W indices.
JAW_CHIN = 8
NOSE_BRIDGE_TOP = 27
EYE_OUTER_R, EYE_OUTER_L = 36, 45  # subject's right eye is on the image's left
EYE_R = (36, 37, 38, 39, 40, 41)
EYE_L = (42, 43, 44, 45, 46, 47)
MOUTH = tuple(range(48, 68))
INNER_LIP_PAIRS = ((61, 67), (62, 66), (63, 65))
# Points that do not move with expression: nose and eye corners. They carry the head pose, the
# alignment of two faces, and the jitter measure.
RIGID = (27, 28, 29, 30, 31, 33, 35, 36, 39, 42, 45)

SPEECH_BAND_HZ = (200.0, 4000.0)
ENVELOPE_FLOOR_DB = 60.0  # the envelope is clipped this far below its loudest frame


def _dist(lm: np.ndarray, a: int, b: int) -> np.ndarray:
    return np.linalg.norm(lm[..., a, :] - lm[..., b, :], axis=-1)


def interocular(lm: np.ndarray) -> np.ndarray:
    """Outer-eye-corner distance: the scale every landmark distance is normalised by."""
    return _dist(lm, EYE_OUTER_R, EYE_OUTER_L)


def mouth_opening(lm: np.ndarray) -> np.ndarray:
    """Inner-lip gap (mean of the three inner lip pairs) over face height (nose bridge to chin)."""
    gap = np.mean([_dist(lm, a, b) for a, b in INNER_LIP_PAIRS], axis=0)
    return gap / _dist(lm, NOSE_BRIDGE_TOP, JAW_CHIN)


def eye_aspect_ratio(lm: np.ndarray) -> np.ndarray:
    """Soukupová & Čech's EAR, mean of both eyes: ~0.3 open, under ~0.15 closed."""
    ears = []
    for p1, p2, p3, p4, p5, p6 in (EYE_R, EYE_L):
        ears.append((_dist(lm, p2, p6) + _dist(lm, p3, p5)) / (2.0 * _dist(lm, p1, p4)))
    return np.mean(ears, axis=0)


def speech_envelope(samples: np.ndarray, rate: int, times: np.ndarray, window: float) -> np.ndarray:
    """Speech-band loudness (dB) of the audio centred on each frame's time, over t ± window / 2.

    Centred, and band-passed with a zero-phase filter, so the envelope is not shifted against the
    video: on the SyncNet example this reads its known 3-frame offset as 3.06 frames (and 0.02 on
    the corrected copy), where a window starting at t reads half a frame late.
    """
    x = np.asarray(samples, np.float64)
    if len(x) > 32:
        sos = signal.butter(4, SPEECH_BAND_HZ, btype="bandpass", fs=rate, output="sos")
        x = signal.sosfiltfilt(sos, x)
    power = np.concatenate([[0.0], np.cumsum(x * x)])
    start = np.clip(np.round((np.asarray(times) - window / 2) * rate).astype(np.int64), 0, len(x))
    stop = np.clip(start + max(1, int(round(window * rate))), 0, len(x))
    mean_power = (power[stop] - power[start]) / np.maximum(stop - start, 1)
    db = 10.0 * np.log10(mean_power + 1e-12)
    return np.maximum(db, db.max() - ENVELOPE_FLOOR_DB)


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson r over the frames where both are finite; NaN when under 3 such frames or flat."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 3:
        return float("nan")
    a, b = a[ok] - a[ok].mean(), b[ok] - b[ok].mean()
    denom = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / denom) if denom > 0 else float("nan")


def lagged_correlations(mouth: np.ndarray, sound: np.ndarray, max_lag: int = 6) -> dict[int, float]:
    """r(mouth[t + k], sound[t]) for k in -max_lag..max_lag: a positive k means the mouth moves
    k frames after the sound it goes with (the audio leads)."""
    n = min(len(mouth), len(sound))
    out = {}
    for k in range(-max_lag, max_lag + 1):
        if k >= 0:
            out[k] = pearson(mouth[k:n], sound[:n - k])
        else:
            out[k] = pearson(mouth[:n + k], sound[-k:n])
    return out


def av_sync(mouth: np.ndarray, sound: np.ndarray, max_lag: int = 6) -> tuple[float, int | None]:
    """(best correlation, its lag in frames) of mouth opening against loudness."""
    corr = {k: r for k, r in lagged_correlations(mouth, sound, max_lag).items() if np.isfinite(r)}
    if not corr:
        return float("nan"), None
    lag = max(corr, key=lambda k: (corr[k], -abs(k)))
    return corr[lag], lag


def resample(times: np.ndarray, values: np.ndarray, at: np.ndarray) -> np.ndarray:
    """`values` (T, ...) sampled at `times`, taken at the nearest frame to each of `at`.

    Nearest, not interpolated: a landmark set is a frame's, and a clip with a variable frame rate
    is compared with a constant-rate one frame against frame.
    """
    times = np.asarray(times, np.float64)
    idx = np.clip(np.searchsorted(times, at), 1, max(len(times) - 1, 1))
    left = np.clip(idx - 1, 0, len(times) - 1)
    idx = np.clip(idx, 0, len(times) - 1)
    nearest = np.where(np.abs(times[left] - at) <= np.abs(times[idx] - at), left, idx)
    out = np.asarray(values)[nearest].astype(np.float64)
    step = float(np.median(np.diff(times))) if len(times) > 1 else 0.0
    beyond = (at < times[0] - step) | (at > times[-1] + step)
    out[beyond] = np.nan
    return out


def similarity_fit(src: np.ndarray, dst: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Least-squares scale, rotation and translation taking points `src` (N, 2) onto `dst`
    (Umeyama 1991)."""
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s, d = src - mu_s, dst - mu_d
    u, sigma, vt = np.linalg.svd(d.T @ s / len(src))
    fix = np.diag([1.0, np.sign(np.linalg.det(u @ vt))])
    rot = u @ fix @ vt
    scale = float(np.trace(np.diag(sigma) @ fix) / max((s * s).sum() / len(src), 1e-12))
    return scale, rot, mu_d - scale * rot @ mu_s


def mouth_landmark_distance(real: np.ndarray, generated: np.ndarray) -> np.ndarray:
    """Per frame: mean distance of the 20 mouth points after a similarity alignment of the
    generated face onto the real one on the rigid points, in % of the real inter-ocular distance."""
    out = np.full(len(real), np.nan)
    for t, (r, g) in enumerate(zip(real, generated)):
        if not (np.isfinite(r).all() and np.isfinite(g).all()):
            continue
        scale, rot, shift = similarity_fit(g[list(RIGID)], r[list(RIGID)])
        moved = scale * g[list(MOUTH)] @ rot.T + shift
        out[t] = 100.0 * np.linalg.norm(moved - r[list(MOUTH)], axis=1).mean() / interocular(r)
    return out


def mean_abs_delta(angles: np.ndarray) -> float:
    """ΔP: mean |frame-to-frame change| over all angles and frames (degrees per frame)."""
    d = np.abs(np.diff(np.asarray(angles, np.float64), axis=0))
    return float(np.nanmean(d)) if np.isfinite(d).any() else float("nan")


def jitter(lm: np.ndarray) -> float:
    """Mean |second difference| of the rigid points, in % of inter-ocular distance.

    Smooth head motion has a small second difference; a landmark (or a rendered face) that
    shakes from frame to frame has a large one.
    """
    rigid = np.asarray(lm, np.float64)[:, list(RIGID)]
    if len(rigid) < 3:
        return float("nan")
    acc = np.linalg.norm(rigid[2:] - 2 * rigid[1:-1] + rigid[:-2], axis=-1)  # (T-2, N)
    scale = np.nanmedian(interocular(lm))
    per_frame = acc.mean(axis=1)
    return float(100.0 * np.nanmean(per_frame) / scale) if np.isfinite(per_frame).any() else float("nan")


def smooth_angles(angles: np.ndarray, fps: float) -> np.ndarray:
    """Head angles with landmark noise filtered out: a Savitzky-Golay fit over ~0.4 s.

    A perspective fit to 68 detected points shakes by about a degree from frame to frame even on
    a still head; unfiltered, that noise would be most of ΔP (a rendered still head reads
    0.34-0.45 °/frame raw, 0.07-0.09 filtered). The window passes nods and turns (0.5 s and
    longer) and is the same for real and generated clips.
    """
    a = np.column_stack([fill_gaps(c) for c in np.asarray(angles, np.float64).T]) if len(angles) else angles
    window = max(5, int(round(0.4 * fps)) | 1)
    if len(a) <= window or not np.isfinite(a).all():
        return np.asarray(angles, np.float64)
    out = signal.savgol_filter(a, window, 2, axis=0)
    out[~np.isfinite(np.asarray(angles)).all(axis=1)] = np.nan
    return out


def fill_gaps(x: np.ndarray) -> np.ndarray:
    """Linear interpolation over NaN frames (edges held); all-NaN stays NaN."""
    x = np.asarray(x, np.float64).copy()
    ok = np.isfinite(x)
    if ok.any() and not ok.all():
        idx = np.arange(len(x))
        x[~ok] = np.interp(idx[~ok], idx[ok], x[ok])
    return x


def detect_blinks(ear: np.ndarray, fps: float) -> np.ndarray:
    """Frame indices of blinks: short dips of the eye aspect ratio below its running baseline.

    A blink closes the lid for 0.1-0.4 s; the EAR drops to under ~60 % of its open value. The
    baseline is a 2 s running median, so squints and slow lid changes are not counted.
    """
    x = fill_gaps(ear)
    if len(x) < 3 or not np.isfinite(x).all():
        return np.zeros(0, np.int64)
    from scipy.ndimage import median_filter

    base = median_filter(x, size=max(3, int(round(2.0 * fps)) | 1), mode="nearest")
    drop = 1.0 - x / np.maximum(base, 1e-6)
    peaks, _ = signal.find_peaks(drop, height=0.3, prominence=0.3, distance=max(1, int(round(0.25 * fps))),
                                 width=(None, max(1.0, 0.6 * fps)))
    return peaks.astype(np.int64)


def blinks_per_minute(blinks: np.ndarray, n_frames: int, fps: float) -> float:
    minutes = n_frames / fps / 60.0
    return float(len(blinks) / minutes) if minutes > 0 else float("nan")


def laplacian_variance(gray: np.ndarray) -> float:
    """Sharpness: the variance of the Laplacian (Pech-Pacheco et al.)."""
    import cv2

    return float(cv2.Laplacian(np.asarray(gray, np.float32), cv2.CV_32F).var())


def psnr(a: np.ndarray, b: np.ndarray, mask: np.ndarray, cap: float = 60.0) -> float:
    """PSNR (dB, 8-bit scale) over the pixels where `mask` is true; capped, since two identical
    areas are infinitely alike and one inf would swamp a mean."""
    if not mask.any():
        return float("nan")
    diff = a[mask].astype(np.float64) - b[mask].astype(np.float64)
    mse = float((diff * diff).mean())
    return cap if mse <= 255.0 ** 2 * 10 ** (-cap / 10) else float(10 * np.log10(255.0 ** 2 / mse))
