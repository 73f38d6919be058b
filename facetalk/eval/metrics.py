"""The numbers of one clip (and of a generated clip against its real one) from its measurements."""

from __future__ import annotations

import numpy as np

from facetalk.eval import signals
from facetalk.eval.dlib_face import SAME_PERSON
from facetalk.eval.measure import ClipMeasure
from facetalk.eval.series import ClipSeries

MAX_LAG = 6  # frames: the AV offset is searched within ±6 frames (±240 ms at 25 fps)


def _mean(x: np.ndarray) -> float | None:
    x = np.asarray(x, np.float64)
    return float(np.nanmean(x)) if np.isfinite(x).any() else None


def _finite(x: float) -> float | None:
    return float(x) if x is not None and np.isfinite(x) else None


def amplitude_metrics(s: ClipSeries) -> dict[str, float | None]:
    """How far the face moves, not only when: the metrics a generator that moves the right way but
    half as far would fail, while correlations and lags pass it.

    Mouth opening (inner-lip gap / face height) and its pause twitch in % of the face height; brow
    height, corner lift and mouth width in % of the inter-ocular distance; lip dynamics in 10⁻³ IOD²;
    the eye aspect ratio as it is. Each as an sd (or range) over the clip's frames with a face;
    brows, corners and width without landmark failures, brows and corners without the part that
    follows the head's pitch (see `signals.expression_spread`).
    """
    angles = np.asarray(s.angles, np.float64).reshape(-1, 3)
    pitch = angles[:, 1]
    out = {
        "mouth_open_sd": _finite(100.0 * signals.spread(s.mouth)),
        "mouth_open_range": _finite(100.0 * signals.percentile_range(s.mouth)),
        "lip_dynamics": _finite(signals.lip_dynamics(s.landmarks)),
        "silent_lip_mad": _finite(100.0 * signals.silent_lip_mad(s.mouth, s.envelope, s.fps)),
        "brow_sd": _finite(100.0 * signals.expression_spread(signals.brow_height(s.landmarks), pitch)),
        "smile_sd": _finite(100.0 * signals.expression_spread(signals.corner_lift(s.landmarks), pitch)),
        "mouth_width_sd": _finite(100.0 * signals.expression_spread(signals.mouth_width(s.landmarks))),
        "eye_open_sd": _finite(signals.eye_open_sd(s.ear, s.blinks)),
    }
    for k, angle in enumerate(("yaw", "pitch", "roll")):
        out[f"{angle}_slow_share"] = _finite(signals.slow_share(angles[:, k], s.fps))
    return out


def clip_metrics(m: ClipMeasure) -> dict[str, float | None]:
    """Every metric a clip has on its own (real or generated alike)."""
    s = m.series
    corr, lag = signals.av_sync(s.mouth, s.envelope, MAX_LAG)
    sd = np.nanstd(s.angles, axis=0) if np.isfinite(s.angles).any() else np.full(3, np.nan)
    gaze = s.gaze[np.isfinite(s.gaze).all(axis=1)]
    ids = np.asarray(m.id_distances)
    return {
        "av_corr": _finite(corr),
        "av_offset_frames": lag,
        "dP": _finite(signals.mean_abs_delta(s.angles)),
        "yaw_sd": _finite(sd[0]),
        "pitch_sd": _finite(sd[1]),
        "roll_sd": _finite(sd[2]),
        "blinks_per_min": _finite(signals.blinks_per_minute(s.blinks, len(s), s.fps)),
        "gaze_sd": _finite(100.0 * float(np.sqrt(gaze.var(axis=0).sum()))) if len(gaze) > 2 else None,
        "id_distance": _mean(ids),
        "id_match": float((ids < SAME_PERSON).mean()) if len(ids) else None,
        "sharpness_ratio": _mean(m.sharpness),
        "background_psnr": _mean(m.background_psnr),
        "jitter": _finite(signals.jitter(s.landmarks)),
        **amplitude_metrics(s),
    }


def paired_metrics(real: ClipSeries, generated: ClipSeries) -> dict[str, float | None]:
    """Generated against real, frame against frame at the real clip's frame times.

    mouth_corr_synced first moves the real mouth back by the real clip's own AV offset: a
    generator held to offset 0 cannot follow a reference whose lips are 3 frames late (v03 is
    such a clip on purpose), and that lag is the reference's, not the generator's.
    """
    at = real.times
    mouth = signals.resample(generated.times, generated.mouth, at)
    landmarks = signals.resample(generated.times, generated.landmarks, at)
    _, lag = signals.av_sync(real.mouth, real.envelope, MAX_LAG)
    return {
        "mouth_corr": _finite(signals.pearson(real.mouth, mouth)),
        "mouth_corr_synced": _finite(signals.lagged_correlations(real.mouth, mouth, MAX_LAG).get(lag or 0, np.nan)),
        "lmd": _mean(signals.mouth_landmark_distance(real.landmarks, landmarks)),
        "closure_recall": _finite(signals.closure_recall(real.mouth, mouth, real.envelope, real.fps)),
    }
