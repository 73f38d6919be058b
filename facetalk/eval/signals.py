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
BROW_R = (17, 18, 19, 20, 21)  # above EYE_R
BROW_L = (22, 23, 24, 25, 26)  # above EYE_L
MOUTH = tuple(range(48, 68))
MOUTH_CORNERS = (48, 54)
# Midpoints of the lips (outer upper, outer lower, inner upper, inner lower): their mean stays at
# the corners' height when the jaw opens, so corners rising above it are a smile, not speech.
LIP_MIDPOINTS = (51, 57, 62, 66)
INNER_LIP_PAIRS = ((61, 67), (62, 66), (63, 65))
# Points that do not move with expression: nose and eye corners. They carry the head pose, the
# alignment of two faces, and the jitter measure.
RIGID = (27, 28, 29, 30, 31, 33, 35, 36, 39, 42, 45)

SPEECH_BAND_HZ = (200.0, 4000.0)
ENVELOPE_FLOOR_DB = 60.0  # the envelope is clipped this far below its loudest frame

# Pauses: the speech envelope this far under its 95th percentile for at least PAUSE_MIN_S. Stop
# closures inside words dip as deep but last under 150 ms; the real clips' noise floors sit 33-59 dB
# under their speech (v10 33, v05 35), so 25 dB still finds their pauses while 30 dB loses some.
PAUSE_BELOW_DB = 25.0
PAUSE_MIN_S = 0.3
# Lips start forming the next sound about 0.1 s before it is heard and settle as long after it:
# that much of a pause next to speech is not counted as silence.
PAUSE_MARGIN_S = 0.1
# Lips count as shut at an inner-lip gap of at most this share of the face height: dlib reads a real
# M/B/P at 0-2 %, an open vowel at 6-14 % (GRID's readers). A shut within speech is one with speech
# within CLOSURE_CONTEXT_S either side; the generated lips match it within CLOSURE_SLACK frames.
LIPS_CLOSED = 0.025
CLOSURE_CONTEXT_S = 0.3
CLOSURE_SLACK = 2
# An M, B or P the words place in the voice (forced alignment, 10 ms steps) counts as shut when the
# lips are, at some frame of the phone or within BILABIAL_SLACK frames of it: the lips meet a little
# before the sound they stop, and a 40-80 ms phone may fall between two frames.
BILABIAL_SLACK = 1
# Head motion slower than this is a phrase-level turn; the rest is nods and shakes.
SLOW_HEAD_HZ = 0.5
BLINK_MARGIN = 2  # frames either side of a detected blink left out of the eye-opening spread
# A frame further than this many robust sds (1.4826 × MAD) from a trace's median is a landmark
# failure, not an expression: dlib drops the brows onto the eyelid crease for a frame or three on
# some faces (on 20 of the 449 frames of v23's generated clip, 10 % IOD below the brows).
OUTLIER_SDS = 3.5


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


def _roll_free(lm: np.ndarray) -> np.ndarray:
    """The landmarks rotated about the eyes' midpoint so the line through the two eye centres is
    level: a head tilt (roll) then moves no point up or down."""
    lm = np.asarray(lm, np.float64)
    right, left = lm[..., list(EYE_R), :].mean(-2), lm[..., list(EYE_L), :].mean(-2)
    d = left - right
    a = -np.arctan2(d[..., 1], d[..., 0])
    c, s = np.cos(a)[..., None], np.sin(a)[..., None]
    centre = ((left + right) / 2)[..., None, :]
    x, y = lm[..., 0] - centre[..., 0], lm[..., 1] - centre[..., 1]
    return np.stack([c * x - s * y, s * x + c * y], axis=-1)


def brow_height(lm: np.ndarray) -> np.ndarray:
    """Mean height of each brow (17-21, 22-26) above its eye's centre (36-41, 42-47), in the head's
    frame (roll removed), over the inter-ocular distance: rises when the brows are raised.

    Measured in the head's frame: in the image a tilt shortens the brow-eye distance (by 3 % at 15°)
    and moves any brow point that sits sideways of its eye's centre up or down, so an expressive
    speaker's head tilts would read as brow motion; levelled, a tilt leaves the height alone.
    Pitch still leaks (the brows stand in front of the eyes, so a nod moves them against the eyes):
    read brow_sd next to pitch_sd.
    """
    lm = _roll_free(lm)
    right = lm[..., list(EYE_R), 1].mean(-1) - lm[..., list(BROW_R), 1].mean(-1)  # y points down
    left = lm[..., list(EYE_L), 1].mean(-1) - lm[..., list(BROW_L), 1].mean(-1)
    return (right + left) / 2 / interocular(lm)


def corner_lift(lm: np.ndarray) -> np.ndarray:
    """Height of the mouth corners (48, 54) above the lips' midpoints (51, 57, 62, 66), in the head's
    frame, over the inter-ocular distance: ~0 for a neutral mouth, positive in a smile.

    Against the lip midpoints, not the nose: opening the jaw lowers corners and lip centre alike,
    so speech barely moves this while a smile lifts the corners into a U.
    """
    lm = _roll_free(lm)
    centre = lm[..., list(LIP_MIDPOINTS), 1].mean(-1)
    corners = lm[..., list(MOUTH_CORNERS), 1].mean(-1)
    return (centre - corners) / interocular(lm)


def mouth_width(lm: np.ndarray) -> np.ndarray:
    """Corner-to-corner distance (48-54) over the inter-ocular distance: widens in a smile (and
    in an "ee"), narrows in an "oo"."""
    return _dist(lm, *MOUTH_CORNERS) / interocular(lm)


def reject_outliers(x: np.ndarray, k: float = OUTLIER_SDS) -> np.ndarray:
    """`x` with NaN where it lies more than `k` robust sds (1.4826 × MAD) from its median.

    Generous on purpose: a sine keeps every sample (its peaks sit 1 robust sd out), while a
    landmark fit that jumps for a frame is gone. A trace whose MAD is zero is kept whole.
    """
    x = np.asarray(x, np.float64).copy()
    ok = np.isfinite(x)
    if ok.sum() < 3:
        return x
    med = np.median(x[ok])
    mad = 1.4826 * np.median(np.abs(x[ok] - med))
    if mad > 0:
        x[np.abs(x - med) > k * mad] = np.nan
    return x


def without_pitch(x: np.ndarray, pitch_deg: np.ndarray) -> np.ndarray:
    """`x` less its least-squares linear fit on sin(pitch), over the frames where both are known.

    The brows stand in front of the eyes and the lip midpoints in front of the mouth corners, so a
    nod moves one against the other in the image: 0.1-0.9 % IOD per degree on the real and generated
    clips here (generated faces, whose brows do not move, read brow heights that follow their pitch
    at r = -0.9). Removing that part also removes any real brow raise that always comes with a head
    lift; it is done on both sides alike.
    """
    x = np.asarray(x, np.float64).copy()
    p = np.sin(np.radians(np.asarray(pitch_deg, np.float64)))
    ok = np.isfinite(x) & np.isfinite(p)
    if ok.sum() < 3:
        return x
    pc = p[ok] - p[ok].mean()
    if pc @ pc < 1e-12:
        return x
    x[ok] -= (pc @ (x[ok] - x[ok].mean())) / (pc @ pc) * pc
    return x


def expression_spread(x: np.ndarray, pitch_deg: np.ndarray | None = None) -> float:
    """The sd of an expression trace (brow height, corner lift, mouth width) over the frames with a
    face, once landmark failures (`reject_outliers`) and, given the pitch, the nod's share
    (`without_pitch`) are out. Without either, a generated face that never raises its brows reads
    up to 2.4× the brow motion of a real speaker who barely moves them (v10)."""
    x = reject_outliers(x)
    if pitch_deg is not None:
        x = without_pitch(x, pitch_deg)
    return spread(x)


def spread(x: np.ndarray) -> float:
    """Standard deviation over the finite frames; NaN under 3 of them."""
    x = np.asarray(x, np.float64)
    x = x[np.isfinite(x)]
    return float(x.std()) if len(x) >= 3 else float("nan")


def percentile_range(x: np.ndarray, low: float = 5.0, high: float = 95.0) -> float:
    """95th minus 5th percentile over the finite frames: the span a signal covers most of the time,
    robust to a few frames of landmark error. NaN under 3 frames."""
    x = np.asarray(x, np.float64)
    x = x[np.isfinite(x)]
    return float(np.percentile(x, high) - np.percentile(x, low)) if len(x) >= 3 else float("nan")


def lip_dynamics(lm: np.ndarray) -> float:
    """THEval's lip dynamics (arXiv 2511.04520): for the 20 mouth points, every pairwise distance
    per frame over that frame's inter-ocular distance; the temporal variance of each pair's series;
    the mean over the 190 pairs. ×1000 (units 10⁻³ IOD²). A mouth moving half as far reads a quarter.

    Unlike the inner-lip gap it also sees the lips spreading, rounding and pushing out.
    """
    lm = np.asarray(lm, np.float64)
    mouth = lm[:, list(MOUTH)]
    ok = np.isfinite(mouth).all(axis=(1, 2)) & np.isfinite(interocular(lm))
    if ok.sum() < 3:
        return float("nan")
    mouth = mouth[ok]
    i, j = np.triu_indices(len(MOUTH), k=1)
    d = np.linalg.norm(mouth[:, i] - mouth[:, j], axis=-1) / interocular(lm[ok])[:, None]
    return float(1000.0 * d.var(axis=0).mean())


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """(start, stop) of each run of True in a boolean series."""
    m = np.concatenate([[False], np.asarray(mask, bool), [False]])
    edges = np.flatnonzero(np.diff(m.astype(np.int8)))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist()))


def speech_pauses(envelope: np.ndarray, fps: float, below_db: float = PAUSE_BELOW_DB,
                  min_s: float = PAUSE_MIN_S, margin_s: float = PAUSE_MARGIN_S) -> list[tuple[int, int]]:
    """(start, stop) frames of each pause: a run of at least `min_s` where the speech envelope stays
    more than `below_db` under its 95th percentile (the clip's speech level), less `margin_s` at
    each end that touches speech (not at the clip's own ends, where no speech is being formed)."""
    env = np.asarray(envelope, np.float64)
    if not np.isfinite(env).any():
        return []
    quiet = env < np.nanpercentile(env, 95) - below_db
    need, margin = int(np.ceil(min_s * fps - 1e-9)), int(round(margin_s * fps))
    out = []
    for a, b in _runs(quiet):
        if b - a < need:
            continue
        a2, b2 = (a + margin if a > 0 else a), (b - margin if b < len(env) else b)
        if b2 > a2:
            out.append((a2, b2))
    return out


def silent_lip_mad(mouth: np.ndarray, envelope: np.ndarray, fps: float) -> float:
    """Lips that twitch in silence: the median absolute deviation of the mouth opening within
    pauses (see `speech_pauses`), each pause about its own median, pooled over the pauses.

    About each pause's own median, so a mouth that rests a little more open in one pause than in
    another is not counted as moving. NaN when the clip has no pause (or no face in it).
    """
    mouth = np.asarray(mouth, np.float64)
    dev = []
    for a, b in speech_pauses(envelope, fps):
        x = mouth[a:b]
        x = x[np.isfinite(x)]
        if len(x):
            dev.append(np.abs(x - np.median(x)))
    pooled = np.concatenate(dev) if dev else np.zeros(0)
    return float(np.median(pooled)) if len(pooled) >= 3 else float("nan")


def lip_closures(mouth: np.ndarray, envelope: np.ndarray, fps: float, closed: float = LIPS_CLOSED,
                 context_s: float = CLOSURE_CONTEXT_S) -> list[tuple[int, int]]:
    """(start, stop) frames of each time the lips shut *within* speech: a run of frames with the
    mouth opening at or under `closed`, with speech (the envelope within PAUSE_BELOW_DB of its 95th
    percentile) in the `context_s` before and after it, and not inside a pause (`speech_pauses`).
    M, B and P shut the lips like this; so, nearly, do a W's rounding and an F's lip on the teeth."""
    env = np.asarray(envelope, np.float64)
    if not np.isfinite(env).any():
        return []
    speech = env >= np.nanpercentile(env, 95) - PAUSE_BELOW_DB
    pauses = speech_pauses(env, fps)
    ctx = max(1, int(round(context_s * fps)))
    out = []
    for a, b in _runs(np.nan_to_num(np.asarray(mouth, np.float64), nan=np.inf) <= closed):
        if speech[max(0, a - ctx):a].any() and speech[b:b + ctx].any() and not any(a < pb and pa < b
                                                                                   for pa, pb in pauses):
            out.append((a, b))
    return out


def closure_recall(real: np.ndarray, generated: np.ndarray, envelope: np.ndarray, fps: float,
                   slack: int = CLOSURE_SLACK, closed: float = LIPS_CLOSED) -> float:
    """Share of the real speaker's lip closures within speech (`lip_closures`) during which, give or
    take `slack` frames, the generated lips shut too. NaN when the real lips never shut in speech."""
    gen = np.nan_to_num(np.asarray(generated, np.float64), nan=np.inf)
    events = lip_closures(real, envelope, fps, closed)
    if not events:
        return float("nan")
    return float(np.mean([gen[max(0, a - slack):b + slack].min() <= closed for a, b in events]))


def bilabials_shut(mouth: np.ndarray, spans: np.ndarray, fps: float, slack: int = BILABIAL_SLACK,
                   closed: float = LIPS_CLOSED) -> float:
    """Share of the M, B and P sounds at `spans` ((N, 2) start and end, s from the first frame)
    during which the lips shut: a mouth opening at or under `closed` at some frame from `slack`
    before the phone to `slack` after it. The words, not the lips, say where the closures must be,
    so this counts the closures a viewer misses, which `closure_recall` (led by the real lips) cannot
    for a real speaker whose lips a landmark tracker reads as parted. NaN without spans."""
    gap = np.nan_to_num(np.asarray(mouth, np.float64), nan=np.inf)
    spans = np.asarray(spans, np.float64).reshape(-1, 2)
    if len(spans) == 0 or len(gap) == 0:
        return float("nan")
    shut = []
    for start, end in spans:
        first = int(np.ceil(start * fps - 1e-9))  # the frames (frame i at i / fps) within the phone
        last = max(first, int(np.ceil(end * fps - 1e-9)) - 1)
        a, b = max(0, first - slack), min(len(gap), last + slack + 1)
        shut.append(a < b and gap[a:b].min() <= closed)
    return float(np.mean(shut))


def eye_open_sd(ear: np.ndarray, blinks: np.ndarray, margin: int = BLINK_MARGIN) -> float:
    """Spread of the eye aspect ratio outside blinks (each blink ± `margin` frames left out): how
    much the eyes widen and narrow (surprise, a smile's squint), which blinks would swamp."""
    ear = np.asarray(ear, np.float64).copy()
    for b in np.asarray(blinks, np.int64).reshape(-1):
        ear[max(0, b - margin): max(0, b + margin + 1)] = np.nan
    return spread(ear)


def slow_share(angle: np.ndarray, fps: float, cutoff_hz: float = SLOW_HEAD_HZ) -> float:
    """Share of an angle's variance in its slow part: phrase-level turns (below `cutoff_hz`) against
    the remainder (nods, shakes), as var(slow) / (var(slow) + var(fast)) over the frames with a face.

    Slow = a zero-phase 4th-order Butterworth low-pass; fast = angle − slow. 1 = only slow drifts and
    turns, 0 = only quick nods. NaN for a still angle or fewer than 1 s of frames.
    """
    x = np.asarray(angle, np.float64)
    ok = np.isfinite(x)
    if ok.sum() < max(3, fps) or cutoff_hz >= fps / 2:
        return float("nan")
    filled = fill_gaps(x)
    filled = filled - filled[ok].mean()
    sos = signal.butter(4, cutoff_hz, btype="lowpass", fs=fps, output="sos")
    slow = signal.sosfiltfilt(sos, filled, padlen=min(len(x) - 1, int(round(2 * fps))))
    fast = filled - slow
    vs, vf = slow[ok].var(), fast[ok].var()
    return float(vs / (vs + vf)) if vs + vf > 1e-12 else float("nan")


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
