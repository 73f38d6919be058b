"""Fit the motion generator's constants to real speakers, and say how well they fit.

    .venv/bin/python tools/fit_motion.py                    # fit and print; nothing written
    .venv/bin/python tools/fit_motion.py --write            # ... and write facetalk/motion/fitted.json
    .venv/bin/python tools/fit_motion.py --videos DIR --cache /tmp/fit_cache

Every real talking clip in DIR (default ../shared/eval/video_real) is tracked and encoded by
`motion.encode` into the very coefficients the generator writes (head angles, jawOpen,
lowerLipDown, mouthSmile, browInnerUp, ...), and its sound goes through the generator's own audio
features. Then, with the generator's structure fixed, its constants are solved for:

- mouth: the per-viseme targets of every mouth coefficient by bounded least squares *through the
  generator's coarticulation* (the blend is linear in the targets, `visemes.viseme_weights`), with
  the loudness gain's floor by a line search; least squares on noisy phones shrinks the motion
  towards its mean, so the opening coefficients are then scaled until the generated lip-gap spread
  matches the real one for the median clip (`typical_factor`); the level of a dip in the voice that
  shuts the lips (`mouth.closure_gate`) is chosen on a grid by the same criterion as the coarticulation,
  the lip gap's correlation with the real one, with the targets refitted through the gate;
- head: how fast and how steeply the engagement (a slow follower of the voice activity) grows,
  and its floor, by a grid search; for each, the per-angle amplitude that makes the mean
  log ratio of generated to real spread zero; the structure with the smallest RMS log ratio wins;
  the reach the motion is bent into is the farthest any clip's head goes from its median;
- expressions: the amplitude (and, for smiles, the chance per phrase; for brows, how long a raise
  holds and how much of it calm speech keeps) that matches the spread of the real slow smile, the
  brow raise and the eye widening.

A second, optional stage closes the loop through the renderer and the evaluation's own measure (dlib
landmarks of the rendered video, not MediaPipe's of the real one): `--calibrate REPORT` takes the
`report.json` of a `facetalk eval` run made with the constants this fit writes, and scales each
amplitude by the factor that brings the median of its evaluation ratios (generated / real) over the
clips of the fit to 1, so that the rendered face moves as far as the real one *as the evaluation
sees both*. The head is refitted instead (structure and amplitudes) to the real spreads as the
evaluation reads them: the two readings of the real clips differ per clip by up to x2.5 (v10: yaw
0.5 deg encoded, 1.2 evaluated), and the engagement that predicts one does not predict the other.
For that, per clip and angle, the slope of the evaluation's reading on a commanded angle is measured
on a known sweep rendered from the clip's photo (0.3-1.2, depending on the face), and the residual
it reads besides (the floor a still head shows) on the rendered video of the report, set against the
track that made it; the fitted head is the one whose predicted reading, hypot(slope * spread,
floor), is closest to the real clip's in RMS log ratio:

    .venv/bin/python tools/fit_motion.py --write
    .venv/bin/facetalk eval --videos ../shared/eval/video_real --out /tmp/fit_eval
    .venv/bin/python tools/fit_motion.py --write --calibrate /tmp/fit_eval/report.json

Clips in HELD_OUT are kept out of every fit (and of the calibration) and reported separately. Stochastic parts are averaged
over SEEDS seeds. The run takes ~1 minute (encoding is cached in --cache); --calibrate adds ~3 minutes
of rendering the sweeps and reading them and the evaluated videos.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import pickle
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.ndimage import gaussian_filter1d
from scipy.optimize import lsq_linear, minimize_scalar

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from facetalk.audio.features import Features  # noqa: E402
from facetalk.motion import fitted as fitted_module  # noqa: E402
from facetalk.motion.brows import BrowMotion  # noqa: E402
from facetalk.motion.expressions import SmileMotion  # noqa: E402
from facetalk.motion.filters import Follower  # noqa: E402
from facetalk.motion.head import ANGLES, HeadMotion  # noqa: E402
from facetalk.motion.mouth import (ATTACK_S, CLOSE_S, RELEASE_S, REOPEN_S, MouthMotion, bilabials_shut,  # noqa: E402
                                   closure_gate, has_speech, silent_frames)
from facetalk.motion.rhythm import Rhythm, RhythmTracker  # noqa: E402
from facetalk.motion.track import COLUMNS  # noqa: E402
from facetalk.motion.visemes import _GROUP, MOUTH, VISEME_NAMES, VISEMES, target_table, viseme_weights  # noqa: E402

FPS = 25.0
HELD_OUT = ("v05_retalking_man_suit", "v10_liveportrait_man_speech", "v16_grid_brbk7n_woman", "v21_grid_sbia1a_man")
SKIP = ("v03_syncnet_example_offset3",)  # v04's frames with the sound 3 frames late: v04 stands for both
VIDEO_EXT = {".mp4", ".avi", ".mpg", ".mov", ".mkv", ".webm"}
SEEDS = 8
BROW_HOLD_S = (0.1, 0.5, 1.0, 1.5)  # how long a brow raise holds before it eases back
ENCODING_CODE = ("face/basis.py", "motion/encode.py", "face/track.py", "face/pose.py", "audio/features.py",
                 "audio/phones.py", "audio/pitch.py")  # a change here re-encodes the clips
RIDGE = 2.0  # pull of each viseme target towards its authored value (phonetics where data is thin)
FIXED = {("PP", "jawOpen"), ("PP", "lowerLipDown"), ("PP", "mouthFunnel"), ("PP", "upperLipUp")}  # shut lips
COART_REACH_S = (0.03, 0.04, 0.05, 0.07, 0.09)  # the coarticulation timings the mouth fit tries
COART_ANTICIPATION_S = (0.0, 0.015, 0.03)
CLOSURE_DB = (0.0, 15.0, 18.0, 21.0, 24.0, 27.0, 30.0, 33.0)  # the closure levels the mouth fit tries (0: no gate)
OPENING = ("jawOpen", "lowerLipDown", "upperLipUp")  # fitted, and what the lip-gap spread is matched with
# The lip shapes (press, funnel, pucker, stretch) keep their authored targets: the encoder tells them
# apart from each other and from a smile only weakly (overlapping fields under a ridge), and fitted
# they fade towards a mean mouth that rounds and spreads for nothing.
GAINED = ("jawOpen", "lowerLipDown")  # what the loudness gain scales (as MouthMotion does)
SMILE_SMOOTH_S, BROW_SMOOTH_S = 0.5, 0.1  # the slow part of a smile; a brow raise without jitter
_C = {name: i for i, name in enumerate(COLUMNS)}
SWEEP_DEG, SWEEP_PERIOD_S, SWEEP_S = 3.0, 2.0, 4.0  # the known head turn each face's reading is measured on
BROWS: dict[str, float] = {}  # brow height per unit coefficient, set in main (needs the portrait's face)


@dataclass
class Clip:
    name: str
    real: np.ndarray  # (T, len(COLUMNS)) encoded motion at FPS
    features: Features

    @property
    def held_out(self) -> bool:
        return self.name in HELD_OUT


def gather(videos: Path, cache: Path) -> list[Clip]:
    """Every clip encoded and its sound analysed (cached by the file's size and mtime and a digest
    of the encoding code)."""
    from facetalk.pipeline import encode_driving, features_from_audio

    cache.mkdir(parents=True, exist_ok=True)
    code = hashlib.sha1(b"".join((ROOT / "facetalk" / f).read_bytes() for f in ENCODING_CODE)).hexdigest()[:10]
    clips = []
    for path in sorted(p for p in videos.iterdir() if p.suffix.lower() in VIDEO_EXT and p.stem not in SKIP):
        st = path.stat()
        key = cache / f"{path.stem}-{st.st_size}-{int(st.st_mtime)}-{code}.pkl"
        if key.exists():
            real, features = pickle.loads(key.read_bytes())
        else:
            real = encode_driving(path, fps=FPS).track.values
            features = features_from_audio(path, FPS)
            key.write_bytes(pickle.dumps((real, features)))
        n = min(len(real), len(features))
        clips.append(Clip(path.stem, real[:n].astype(np.float64), features.frames(0, n)))
    return clips


# --- the lip gap: what the evaluation's mouth opening measures -------------------------------------

def _portrait_basis() -> tuple[np.ndarray, np.ndarray]:
    from facetalk.face.basis import build_basis, mouth_close
    from facetalk.pipeline import rig_from_photo

    rig, _ = rig_from_photo(ROOT / "facetalk" / "assets" / "portrait.png")
    shut = rig.shape + mouth_close(rig.shape)
    return shut, build_basis(shut)


def gap_per_unit() -> dict[str, float]:
    """Inner-lip gap (cm) each mouth coefficient opens at 1, on the built-in portrait's face."""
    from facetalk.motion.encode import lip_gap
    from facetalk.motion.track import EXPRESSIONS

    shut, basis = _portrait_basis()
    return {name: float(lip_gap(shut + basis[EXPRESSIONS.index(name)]) - lip_gap(shut)) for name in
            ("jawOpen", "lowerLipDown", "upperLipUp", "mouthFunnel", "mouthPucker", "mouthPress", "mouthStretchL",
             "mouthSmileL")}


def brow_per_unit() -> dict[str, float]:
    """Brow height over the eyes (cm; the brows' mean height above the eye corners, as the
    evaluation measures it) that each coefficient adds at 1: the raise the eye sees, whichever
    fields the encoder split it into."""
    from facetalk.face import landmarks as L
    from facetalk.motion.track import EXPRESSIONS

    shut, basis = _portrait_basis()
    brows, eyes = list(L.BROW_R + L.BROW_L), [33, 133, 362, 263]

    def height(shape: np.ndarray) -> float:
        return float(shape[brows, 1].mean() - shape[eyes, 1].mean())
    names = ("browInnerUp", "browOuterUpL", "browOuterUpR", "browDownL", "browDownR", "eyeWide", "eyeSquint")
    return {name: height(shut + basis[EXPRESSIONS.index(name)]) - height(shut) for name in names}


def brow_height(values: np.ndarray, per_unit: dict[str, float]) -> np.ndarray:
    """(T,) brow height change (cm) of a motion track (T, COLUMNS)."""
    return sum(g * values[:, _C[name]] for name, g in per_unit.items())


def lip_gap(values: np.ndarray, per_unit: dict[str, float]) -> np.ndarray:
    """(T,) lip gap in cm of a motion track (T, COLUMNS): the coefficients' openings summed."""
    gap = np.zeros(len(values))
    for name, g in per_unit.items():
        both = name.replace("L", "") if name.endswith("L") else None
        if both:  # a left/right pair: each opens half of what the symmetric pair opens
            gap += g * (values[:, _C[name]] + values[:, _C[both + "R"]]) / 2
        else:
            gap += g * values[:, _C[name]]
    return gap


def real_mouth(real: np.ndarray) -> np.ndarray:
    """(T, P) the encoded mouth in MOUTH order (mouthStretch: the mean of both sides)."""
    cols = []
    for name in MOUTH:
        if name == "mouthStretch":
            cols.append((real[:, _C["mouthStretchL"]] + real[:, _C["mouthStretchR"]]) / 2)
        else:
            cols.append(real[:, _C[name]])
    return np.column_stack(cols)


# --- mouth ------------------------------------------------------------------------------------------

def mouth_track(clip: Clip, targets: np.ndarray, gain: tuple[float, float], coart: tuple[float, float],
                closure_db: float) -> np.ndarray:
    """(T, COLUMNS) the generator's mouth for a clip (other columns neutral)."""
    f = clip.features
    curves = MouthMotion(FPS, targets, gain, coart, closure_db).run(f.phones, f.loudness, f.brightness, f.active)
    out = np.zeros((len(f), len(COLUMNS)))
    for name, curve in curves.items():
        out[:, _C[name]] = curve
    return out


def best_lag(clip: Clip, targets: np.ndarray, gain: tuple[float, float], coart: tuple[float, float],
             closure_db: float, per_unit: dict[str, float], max_lag: int = 2) -> int:
    """Frames the real lips trail the generated ones (within ±max_lag): a clip's own AV offset."""
    real, gen = lip_gap(clip.real, per_unit), lip_gap(mouth_track(clip, targets, gain, coart, closure_db), per_unit)
    n = len(real)

    def r(k: int) -> float:
        a, b = (real[k:], gen[:n - k]) if k >= 0 else (real[:n + k], gen[-k:])
        return float(np.corrcoef(a, b)[0, 1])
    return max(range(-max_lag, max_lag + 1), key=lambda k: (r(k), -abs(k)))


def shift(x: np.ndarray, k: int) -> np.ndarray:
    """x moved k frames earlier (edge held): the real lips aligned to the sound."""
    if k == 0:
        return x
    idx = np.clip(np.arange(len(x)) + k, 0, len(x) - 1)
    return x[idx]


def gate_of(clip: Clip, closure_db: float, anticipation_s: float) -> np.ndarray:
    """(T,) what MouthMotion multiplies the openings by: the closure gate, and 0 at the frames an
    M, B or P shuts."""
    f = clip.features
    gate = Follower(FPS, REOPEN_S, CLOSE_S, start=1.0).run(closure_gate(f.loudness, f.brightness, f.active, closure_db))
    if not has_speech(f.phones):
        return gate
    heard_as_silence = silent_frames(f.phones, 0, len(f), FPS) & (f.active > 0.5)
    return gate * ~bilabials_shut(f.phones, heard_as_silence, 0, FPS, anticipation_s)


def fit_viseme_targets(clips: list[Clip], lags: dict[str, int], floor: float, coart: tuple[float, float],
                       closure_db: float) -> tuple[np.ndarray, float]:
    """Bounded ridge least squares of every mouth coefficient's viseme targets; (table, residual)."""
    prior = target_table()
    table = prior.copy()
    total = 0.0
    sil = VISEME_NAMES.index("sil")
    blocks = []
    for clip in clips:
        f = clip.features
        w = viseme_weights(f.phones, len(f), FPS, 0, *coart) if f.phones is not None else None
        if w is None:
            continue
        level = Follower(FPS, ATTACK_S, RELEASE_S).run(f.loudness.astype(np.float64))
        gain = np.clip(floor + (1 - floor) * level, 0.0, 1.6)
        blocks.append((w, gain, gate_of(clip, closure_db, coart[1]), shift(real_mouth(clip.real), lags[clip.name]),
                       1.0 / np.sqrt(len(f))))
    for p, name in enumerate(MOUTH):
        if name not in OPENING:
            continue
        rows, rhs = [], []
        for w, gain, gate, real, weight in blocks:
            g = (gain if name in GAINED else 1.0) * gate  # every fitted opening is gated
            rows.append(weight * g[:, None] * w[:, _GROUP[p], :])
            rhs.append(weight * real[:, p])
        a, b = np.vstack(rows), np.concatenate(rhs)
        free = [v for v in range(len(VISEME_NAMES)) if v != sil and (VISEME_NAMES[v], name) not in FIXED]
        fixed = [v for v in range(len(VISEME_NAMES)) if v not in free]
        b = b - a[:, fixed] @ prior[fixed, p]
        ridge = np.sqrt(RIDGE / len(VISEME_NAMES)) * np.eye(len(free))
        sol = lsq_linear(np.vstack([a[:, free], ridge]), np.concatenate([b, ridge @ prior[free, p]]),
                         bounds=(0.0, 1.0), method="bvls")
        table[free, p] = sol.x
        total += float(np.sum((a[:, free] @ sol.x - b) ** 2))
    return table, total


def gap_r(clip: Clip, table: np.ndarray, gain: tuple[float, float], coart: tuple[float, float], closure_db: float,
          per_unit: dict[str, float]) -> float:
    """Pearson r of the generated and the real lip gap, frame by frame."""
    gen = lip_gap(mouth_track(clip, table, gain, coart, closure_db), per_unit)
    return float(np.corrcoef(gen, lip_gap(clip.real, per_unit))[0, 1])


def fit_targets_and_gain(clips: list[Clip], lags: dict[str, int], coart: tuple[float, float], closure_db: float
                         ) -> tuple[np.ndarray, tuple[float, float]]:
    """The viseme targets and the loudness gain for one coarticulation timing."""
    best = None
    # The real lips follow the phones more than the loudness: the residual falls all the way to a
    # constant gain (floor 1). The floor stops at 0.8 (2 % more residual than 1.0 on these clips), so
    # a fifth of the opening stays on the loudness, which a live stream knows exactly while its
    # phones are still being read.
    for floor in (0.2, 0.35, 0.5, 0.65, 0.8):
        table, residual = fit_viseme_targets(clips, lags, floor, coart, closure_db)
        if best is None or residual < best[1]:
            best = (table, residual, floor)
    table, _, floor = best
    return table, (floor, 1.0 - floor)


def fit_mouth(clips: list[Clip], per_unit: dict[str, float],
              start: tuple[np.ndarray, tuple[float, float], tuple[float, float], float]
              ) -> tuple[np.ndarray, tuple[float, float], tuple[float, float], float, dict[str, int]]:
    """Targets and gain for each coarticulation timing (reach, anticipation) on a grid; the timing
    whose lips correlate best with the real ones (mean r over the clips) wins. Noisy phones favour
    a long reach (smoothing over misread phones), crisp articulation a short one: the data decide.
    Then, at that timing, the closure level the same way (`fit_closure`)."""
    targets, gain, coart, closure_db = start
    lags = {c.name: best_lag(c, targets, gain, coart, closure_db, per_unit) for c in clips}
    best = None
    for reach in COART_REACH_S:
        for anticipation in COART_ANTICIPATION_S:
            table, g = fit_targets_and_gain(clips, lags, (reach, anticipation), closure_db)
            r = float(np.mean([gap_r(c, table, g, (reach, anticipation), closure_db, per_unit) for c in clips]))
            print(f"  coarticulation reach {reach:.3f} s, anticipation {anticipation:.3f} s: mean lip-gap r {r:.3f}")
            if best is None or r > best[0]:
                best = (r, table, g, (reach, anticipation))
    _, table, gain, coart = best
    table, gain, closure_db = fit_closure(clips, lags, coart, per_unit)
    # Least squares on noisy phones shrinks the motion towards its mean: widen the opening until
    # the generated lip-gap spread is the real one for the typical clip (`typical_factor`).
    ratios = [lip_gap(mouth_track(c, table, gain, coart, closure_db), per_unit).std() / lip_gap(c.real, per_unit).std()
              for c in clips]
    scale = typical_factor(ratios)
    for name in OPENING:
        p = MOUTH.index(name)
        table[:, p] = np.clip(table[:, p] * scale, 0.0, 1.0)
    return table, gain, coart, closure_db, lags


def fit_closure(clips: list[Clip], lags: dict[str, int], coart: tuple[float, float], per_unit: dict[str, float]
                ) -> tuple[np.ndarray, tuple[float, float], float]:
    """The closure level (CLOSURE_DB, dB under the speaker's peak) whose gated lips correlate best
    with the real ones, targets and gain refitted through the gate for each; (table, gain, level).
    The phones miss closures the sound shows (a P read as "D K"); too shallow a level shuts the
    lips on every unstressed vowel, too deep one never."""
    best = None
    for closure_db in CLOSURE_DB:
        table, g = fit_targets_and_gain(clips, lags, coart, closure_db)
        r = float(np.mean([gap_r(c, table, g, coart, closure_db, per_unit) for c in clips]))
        print(f"  closure at {closure_db:4.1f} dB under the peak: mean lip-gap r {r:.3f}")
        if best is None or r > best[0]:
            best = (r, table, g, closure_db)
    _, table, gain, closure_db = best
    return table, gain, closure_db


# --- head -------------------------------------------------------------------------------------------

def head_sd(clip: Clip, params: dict) -> np.ndarray:
    """(3,) generated yaw, pitch, roll spread, RMS over SEEDS seeds."""
    f = clip.features
    rhythm = RhythmTracker(FPS, params).run(f.active)
    out = []
    for seed in range(SEEDS):
        h = HeadMotion(FPS, np.random.default_rng(seed), params)
        curves = h.run(rhythm, f.loudness, float(f.loudness[-1]))
        out.append([curves[k].std() for k in ANGLES])
    return np.sqrt(np.mean(np.square(out), axis=0))


def real_head_sd(clip: Clip) -> np.ndarray:
    return np.array([clip.real[:, _C[k]].std() for k in ANGLES])


def head_reach(clips: list[Clip]) -> dict[str, float]:
    """Per angle, the farthest any clip's head goes from its median (degrees): the generator's
    motion is bent into it (`head.HeadMotion`), since the fitted spreads say nothing of the tails."""
    def farthest(x: np.ndarray) -> float:
        return float(np.abs(x - np.median(x)).max())

    return {k: round(max(farthest(c.real[:, _C[k]]) for c in clips), 1) for k in ANGLES}


def fit_head(clips: list[Clip], start: dict, readings: dict[str, Reading] | None = None) -> tuple[dict, float]:
    """The engagement's structure and the per-angle amplitudes that bring the head spread closest to
    the real one: RMS log ratio over clips and angles, either of the generated to the encoded spread
    (default) or, given the evaluation's `readings`, of what it would read of the generated head to
    what it read of the real one. The grid runs without the reach (it bends only the rare far
    turns), which the result then gets."""
    if readings is None:  # the encoded spreads, read as they are: slope 1, no floor
        readings = {c.name: Reading(np.ones(3), np.zeros(3), real_head_sd(c)) for c in clips}
    best = None
    for engage_s in (2.0, 4.0, 6.0, 9.0, 13.0):
        for power in (1.0, 2.0, 3.0, 4.0):
            for floor in (0.02, 0.05, 0.1, 0.2):
                unit = {"drift_sd": {k: 1.0 for k in ANGLES}, "turn_sd": {k: 1.0 for k in ANGLES},
                        "nod_deg": start["nod_deg"] / start["drift_sd"]["pitch"], "engage_s": engage_s,
                        "power": power, "floor": floor}
                gen = np.array([head_sd(c, unit) for c in clips])
                scale, rms = _amplitudes(gen, [readings[c.name] for c in clips])
                if best is None or rms < best[1]:
                    best = (unit, rms, scale)
    unit, rms, scale = best
    params = {"drift_sd": {k: round(float(s), 3) for k, s in zip(ANGLES, scale)},
              "turn_sd": {k: round(float(s), 3) for k, s in zip(ANGLES, scale)},
              "nod_deg": round(float(unit["nod_deg"] * scale[1]), 3), "engage_s": unit["engage_s"],
              "power": unit["power"], "floor": unit["floor"], "reach_deg": head_reach(clips)}
    return params, rms


def _amplitudes(gen: np.ndarray, readings: list[Reading]) -> tuple[np.ndarray, float]:
    """Per angle, the scale of unit spreads `gen` (clips, 3) whose evaluated reading is closest to the
    real one in RMS log ratio (with a floor it is no longer the mean log ratio; without, it is)."""
    slope = np.array([r.slope for r in readings])
    floor = np.array([r.floor for r in readings])
    real = np.log([r.real for r in readings])
    scale, squares = np.zeros(3), np.zeros(3)
    for j in range(3):
        def cost(log_a: float) -> float:
            return float(np.mean((np.log(np.hypot(slope[:, j] * np.exp(log_a) * gen[:, j], floor[:, j])) - real[:, j]) ** 2))
        found = minimize_scalar(cost, bounds=(-4.0, 4.0), method="bounded")
        scale[j], squares[j] = np.exp(found.x), found.fun
    return scale, float(np.sqrt(squares.mean()))


# --- expressions ------------------------------------------------------------------------------------

def _rhythm(clip: Clip, head: dict) -> Rhythm:
    return RhythmTracker(FPS, head).run(clip.features.active)


def smile_sd(clip: Clip, params: dict, head: dict) -> float:
    f = clip.features
    pitch = f.pitch_hz if f.pitch_hz is not None else np.zeros(len(f))
    r, one = _rhythm(clip, head), np.ones(len(f))
    sds = [SmileMotion(FPS, np.random.default_rng(s), params).run(r, pitch, one)["mouthSmileL"].std()
           for s in range(SEEDS)]
    return float(np.sqrt(np.mean(np.square(sds))))


def brow_track(curves: dict[str, np.ndarray], n: int) -> np.ndarray:
    out = np.zeros((n, len(COLUMNS)))
    for name, curve in curves.items():
        out[:, _C[name]] = curve
    return out


def brow_curves(clip: Clip, params: dict, head: dict) -> dict[str, np.ndarray]:
    f = clip.features
    pitch = f.pitch_hz if f.pitch_hz is not None else np.zeros(len(f))
    b = BrowMotion(FPS, params)
    return b.run(pitch, f.loudness, 0.0, 0.0, _rhythm(clip, head), np.ones(len(f))) if len(f) else {}


def real_expression_sd(clip: Clip) -> dict[str, float]:
    smile = (clip.real[:, _C["mouthSmileL"]] + clip.real[:, _C["mouthSmileR"]]) / 2
    return {"smile": float(gaussian_filter1d(smile, SMILE_SMOOTH_S * FPS).std()),
            "brow": float(gaussian_filter1d(brow_height(clip.real, BROWS), BROW_SMOOTH_S * FPS).std()),
            "wide": float(gaussian_filter1d(clip.real[:, _C["eyeWide"]], BROW_SMOOTH_S * FPS).std())}


def fit_expression(clips: list[Clip], head: dict) -> tuple[dict, dict[str, float]]:
    real = [real_expression_sd(c) for c in clips]
    best = None
    for chance in (0.3, 0.5, 0.7, 0.9):
        unit = {"smile": 1.0, "smile_chance": chance}
        gen = np.array([smile_sd(c, unit, head) for c in clips])
        ok = gen > 1e-4
        log_scale = float(np.mean(np.log([r["smile"] for r, o in zip(real, ok) if o]) - np.log(gen[ok])))
        rms = float(np.sqrt(np.mean((np.log(gen[ok]) + log_scale - np.log([r["smile"] for r, o in zip(real, ok) if o])) ** 2)))
        if best is None or rms < best[1]:
            best = (chance, rms, float(np.exp(log_scale)))
    chance, smile_rms, smile = best
    out = {"smile": round(min(smile, 1.0), 3), "smile_chance": chance}
    rms = {"smile": smile_rms}
    best = None
    for floor, hold in ((f, h) for f in (0.05, 0.15, 0.3, 0.5) for h in BROW_HOLD_S):
        unit = {"smile": 1.0, "smile_chance": chance, "brow": 1.0, "wide": 1.0, "brow_floor": floor,
                "brow_hold_s": hold}
        curves = [brow_curves(c, unit, head) for c in clips]
        fit = {"brow_floor": floor, "brow_hold_s": hold}
        err = {}
        for key, column in (("brow", "browInnerUp"), ("wide", "eyeWide")):
            gen = np.array([brow_height(brow_track(c, len(c[column])), BROWS).std() if key == "brow" else c[column].std()
                            for c in curves])
            ok = gen > 1e-4
            r = np.array([x[key] for x in real])
            log_scale = float(np.mean(np.log(r[ok]) - np.log(gen[ok]))) if ok.any() else 0.0
            fit[key] = round(float(np.exp(log_scale)), 3)  # may exceed 1: raises are drawn at their accent's strength
            err[key] = float(np.sqrt(np.mean((np.log(gen[ok]) + log_scale - np.log(r[ok])) ** 2))) if ok.any() else np.inf
        if best is None or err["brow"] < best[1]["brow"]:
            best = (fit, err)
    out.update(best[0])
    rms.update(best[1])
    return out, rms


# --- report -----------------------------------------------------------------------------------------

def figures(clips: list[Clip], f: fitted_module.Fitted, per_unit: dict[str, float]) -> list[dict]:
    """Per clip: generated / real spread of the lip gap, smile, brows and head, and the lip gap's r."""
    rows = []
    head, expr = f.head, f.expression
    for c in clips:
        gen_gap = lip_gap(mouth_track(c, f.visemes, f.mouth_gain, f.coarticulation, f.closure_db), per_unit)
        real_gap = lip_gap(c.real, per_unit)
        r = real_expression_sd(c)
        b = brow_curves(c, expr, head)
        rows.append({
            "clip": c.name, "held_out": c.held_out,
            "gap_sd": gen_gap.std() / real_gap.std(), "gap_r": float(np.corrcoef(gen_gap, real_gap)[0, 1]),
            "smile_sd": smile_sd(c, expr, head) / max(r["smile"], 1e-6),
            "brow_sd": brow_height(brow_track(b, len(b["browInnerUp"])), BROWS).std() / max(r["brow"], 1e-6),
            **{f"{k}_sd": float(g / rr) for k, g, rr in zip(ANGLES, head_sd(c, head), real_head_sd(c))},
        })
    return rows


def print_figures(title: str, rows: list[dict]) -> None:
    keys = ("gap_sd", "gap_r", "smile_sd", "brow_sd", "yaw_sd", "pitch_sd", "roll_sd")
    print(f"\n{title} (generated / real spread per clip; gap_r: Pearson r of the lip gaps)")
    print(f"  {'clip':32s}" + "".join(f"{k:>10s}" for k in keys))
    for group, name in ((False, "fitted on"), (True, "held out")):
        sel = [r for r in rows if r["held_out"] == group]
        if not sel:
            continue
        for r in sel:
            print(f"  {r['clip'][:32]:32s}" + "".join(f"{r[k]:10.2f}" for k in keys))
        mean = {k: np.mean([r[k] for r in sel]) for k in keys}
        typical = {k: np.exp(np.sqrt(np.mean([np.log(max(r[k], 1e-3)) ** 2 for r in sel]))) for k in keys
                   if k.endswith("_sd")}
        print(f"  {'mean, ' + name:32s}" + "".join(f"{mean[k]:10.2f}" for k in keys))
        print(f"  {'typical factor, ' + name:32s}" + "".join(f"{typical[k]:10.2f}" if k in typical else f"{'':10s}"
                                                            for k in keys))


def print_head_readings(clips: list[Clip], head: dict, readings: dict[str, Reading]) -> None:
    """What the evaluation should read of the fitted head: per clip, predicted / real spread."""
    print(f"  {'clip':32s}" + "".join(f"{k + ' ratio':>12s}" for k in ANGLES) + "   (predicted / real, as evaluated)")
    logs = {}
    for c in clips:
        r = readings[c.name]
        logs[c.name] = np.log(r.of(head_sd(c, head)) / r.real)
        print(f"  {c.name[:32]:32s}" + "".join(f"{np.exp(x):12.2f}" for x in logs[c.name]))
    for name, sel in (("fitted on", [c for c in clips if not c.held_out]), ("held out", [c for c in clips if c.held_out]),
                      ("all", clips)):
        if sel:
            typical = np.exp(np.sqrt(np.mean([logs[c.name] ** 2 for c in sel], axis=0)))
            print(f"  {'typical factor, ' + name:32s}" + "".join(f"{x:12.2f}" for x in typical))


# evaluation ratio -> what it scales: (section, key or keys); opening visemes are the mouth's
CALIBRATED = {
    "yaw_sd": ("head", ("drift_sd.yaw", "turn_sd.yaw")),
    "pitch_sd": ("head", ("drift_sd.pitch", "turn_sd.pitch", "nod_deg")),
    "roll_sd": ("head", ("drift_sd.roll", "turn_sd.roll")),
    "brow_sd": ("expression", ("brow",)),
    "smile_sd": ("expression", ("smile",)),
    "mouth_open_sd": ("visemes", OPENING),
}


def typical_factor(ratios: Iterable[float]) -> float:
    """The factor that brings the median clip's ratio (generated / real) to 1.

    The median, not the mean: a few speakers whose lips barely move (`v08` reads 1.7, `v16` 2.5
    with the mean-centred mouth) pulled the mean up, and so every other clip down, until 7 of the
    11 fitted clips opened less than their speaker in the evaluation (`v23` 0.68). Centred on the
    median, half the clips move more than their speaker and half less.
    """
    logs = np.log([r for r in ratios if r])
    return float(np.exp(-np.median(logs))) if len(logs) else 1.0


def calibration(report: Path, fit: list[str]) -> dict[str, float]:
    """Per evaluation ratio, the `typical_factor` over the fit's clips in `report`."""
    data = json.loads(report.read_text())
    return {metric: typical_factor(c["ratios"][metric] for c in data["clips"]
                                   if c["name"] in fit and (c.get("ratios") or {}).get(metric))
            for metric in CALIBRATED}


@dataclass
class Reading:
    """How the evaluation reads one clip's rendered head, per angle (yaw, pitch, roll): the slope of
    its reading on the commanded angle, what it reads besides (the residual's spread: landmark noise,
    the mouth and brows moving the fitted points), and the real clip's spread as it reads that."""

    slope: np.ndarray  # (3,)
    floor: np.ndarray  # (3,) degrees
    real: np.ndarray  # (3,) degrees

    def of(self, generated_sd: np.ndarray) -> np.ndarray:
        """The spread the evaluation would read for a head commanded with `generated_sd` (3,)."""
        return np.hypot(self.slope * generated_sd, self.floor)


def reading_model(commanded: np.ndarray, read: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per column of (T, 3) angles: |slope| and residual spread of `read` regressed on `commanded`
    (frames where the reading is missing are left out)."""
    slope, floor = np.zeros(commanded.shape[1]), np.zeros(commanded.shape[1])
    for j in range(commanded.shape[1]):
        ok = np.isfinite(read[:, j])
        x, y = commanded[ok, j], read[ok, j]
        b = np.polyfit(x, y, 1) if x.std() > 1e-9 else np.array([0.0, y.mean()])
        slope[j], floor[j] = abs(b[0]), float(np.std(y - np.polyval(b, x)))
    return slope, floor


def read_angles(frames: Iterable[np.ndarray], faces, fps: float) -> np.ndarray:
    """(T, 3) yaw, pitch, roll of rendered frames as the evaluation reads them (dlib's landmarks,
    the perspective fit, the Savitzky-Golay filter); NaN rows where no face is found."""
    from facetalk.eval import signals
    from facetalk.eval.head_pose import head_angles

    faces.reset()
    marks, size = [], (0, 0)
    for frame in frames:
        found = faces.landmarks(np.ascontiguousarray(frame))
        marks.append(found[0] if found else np.full((68, 2), np.nan))
        size = (frame.shape[1], frame.shape[0])
    return signals.smooth_angles(head_angles(np.array(marks), *size), fps)


def swept_slopes(photo: Path, faces) -> np.ndarray:
    """(3,) how the evaluation reads a turn of this face, per angle: the slope of its reading on a
    known sweep (a ±SWEEP_DEG sine, nothing else moving) rendered from the clip's photo.

    Read off the evaluation's own video instead, the slope is noise wherever the head barely moves:
    a GRID reader's head is commanded ~0.5 deg over a reading floor of ~0.4 deg, and `v19`'s yaw
    read x0.30 in one run and x1.11 in the next, which moved the fitted yaw by 10 %."""
    from facetalk.motion.track import MotionTrack
    from facetalk.pipeline import frames, rig_from_photo
    from facetalk.render.paste import Paster

    rig, image = rig_from_photo(photo, full_frame=True)  # as the evaluation renders it: the perspective
    paster = Paster(image, rig.crop_to_photo, rig.size)  # fit reads a face in the whole frame
    n = int(round(SWEEP_S * FPS))
    wave = SWEEP_DEG * np.sin(2 * np.pi * np.arange(n) / (SWEEP_PERIOD_S * FPS))
    slopes = np.zeros(len(ANGLES))
    for j, angle in enumerate(ANGLES):
        read = read_angles(frames(rig, MotionTrack.neutral(n, FPS).with_columns(**{angle: wave}), paster), faces, FPS)
        slopes[j] = reading_model(wave[:, None], read[:, [j]])[0][0]
    return slopes


def evaluated_readings(report: Path, clips: list[Clip], videos: Path) -> dict[str, Reading]:
    """Each clip's Reading, from a `facetalk eval` run made with the shipped constants: the slope
    from a sweep rendered from the clip's photo (`swept_slopes`); the floor from its evaluated
    video, read again by the evaluation's own head measure and set against the track the generator
    made for it (deterministic: the same voice, rate and seed).

    Why not one factor for all: dlib's perspective fit reads a rendered turn at 0.3-1.4x of the
    commanded angle depending on the face, and over a floor of 0.2-0.9 deg that a still head already
    shows; a reader of short sentences is near that floor, real and generated alike. A single factor
    (the mean log ratio) took the floor for motion and the GRID heads for too lively."""
    from facetalk.eval.dlib_face import DlibFace
    from facetalk.media.video import probe_video, read_video_frames
    from facetalk.motion.controls import Controls
    from facetalk.motion.generate import generate
    from facetalk.pipeline import features_from_audio

    data = {c["name"]: c for c in json.loads(report.read_text())["clips"]}
    generated = report.parent / "generated"
    faces, out = DlibFace.load(), {}
    for clip in clips:
        video = generated / f"{clip.name}.mp4"
        if clip.name not in data or not video.exists():
            raise SystemExit(f"fit_motion: {report.parent} has no evaluated clip {clip.name}; "
                             "evaluate every clip with the shipped constants")
        voice = generated / f"{clip.name}_voice.wav"
        voice = voice if voice.exists() else next(p for p in videos.iterdir() if p.stem == clip.name)
        fps = probe_video(video).fps
        track = generate(features_from_audio(voice, fps), Controls())
        read = read_angles((frame for _, frame in read_video_frames(video)), faces, fps)
        n = min(len(read), len(track))
        _, floor = reading_model(track.values[:n, [_C[k] for k in ANGLES]], read[:n])
        slope = swept_slopes(generated / f"{clip.name}_photo.png", faces)
        out[clip.name] = Reading(slope, floor, np.array([data[clip.name]["real"][f"{k}_sd"] for k in ANGLES]))
        print(f"  {clip.name}: the evaluation reads " + ", ".join(
            f"{k} x{s:.2f} over {f:.2f} deg" for k, s, f in zip(ANGLES, slope, floor)))
    return out


def calibrate(table: np.ndarray, head: dict, expression: dict, factors: dict[str, float]) -> None:
    """Scale the fitted amplitudes in place by the calibration factors."""
    for metric, (section, keys) in CALIBRATED.items():
        k = factors.get(metric, 1.0)
        if section == "visemes":
            for name in keys:
                p = MOUTH.index(name)
                table[:, p] = np.clip(table[:, p] * k, 0.0, 1.0)
            continue
        target = head if section == "head" else expression
        for key in keys:
            if "." in key:
                outer, inner = key.split(".")
                target[outer][inner] = round(target[outer][inner] * k, 3)
            else:
                target[key] = round(target[key] * k, 3)


def to_json(table: np.ndarray, gain: tuple[float, float], coart: tuple[float, float], closure_db: float, head: dict,
            expression: dict, fit: list[str], held: list[str]) -> dict:
    return {
        "source": "tools/fit_motion.py over ../shared/eval/video_real",
        "fitted_on": fit, "held_out": held,
        "visemes": {v: {p: round(float(table[i, k]), 3) for k, p in enumerate(MOUTH)} for i, v in enumerate(VISEME_NAMES)},
        "mouth": {"gain_floor": round(gain[0], 3), "gain_slope": round(gain[1], 3),
                  "reach_s": coart[0], "anticipation_s": coart[1], "closure_db": closure_db},
        "head": head, "expression": expression,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--videos", type=Path, default=ROOT.parent / "shared" / "eval" / "video_real")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/facetalk_fit_cache"))
    ap.add_argument("--write", action="store_true", help="write facetalk/motion/fitted.json")
    ap.add_argument("--calibrate", type=Path, help="report.json of a facetalk eval run with the constants this "
                    "fit writes: scale the amplitudes by the evaluation's ratios on the fit's clips")
    args = ap.parse_args(argv)
    if not args.videos.is_dir():
        print(f"fit_motion: no clips at {args.videos} (the evaluation material ../shared/eval is absent); nothing to fit")
        return 0
    clips = gather(args.videos, args.cache)
    global BROWS
    BROWS = brow_per_unit()
    print("brow height (cm) per unit coefficient:", {k: round(v, 3) for k, v in BROWS.items()})
    fit = [c for c in clips if not c.held_out]
    per_unit = gap_per_unit()
    before = fitted_module.fitted()
    print(f"{len(fit)} clips to fit, {len(clips) - len(fit)} held out ({', '.join(HELD_OUT)})")
    print("lip gap (cm) per unit coefficient:", {k: round(v, 3) for k, v in per_unit.items()})

    table, gain, coart, closure_db, lags = fit_mouth(
        fit, per_unit, (before.visemes, before.mouth_gain, before.coarticulation, before.closure_db))
    print("\nmouth: AV lag of each real clip (frames the lips trail the sound):", lags)
    print(f"mouth: loudness gain = {gain[0]:.2f} + {gain[1]:.2f} * loudness; coarticulation reach {coart[0]} s, "
          f"anticipation {coart[1]} s")
    print(f"mouth: the lips shut in dips of the voice {closure_db:g} dB under the peak")
    print("mouth: viseme targets (" + ", ".join(MOUTH) + ")")
    for i, v in enumerate(VISEME_NAMES):
        authored = VISEMES[v].target
        print(f"  {v:6s} " + " ".join(f"{table[i, k]:5.2f}" for k in range(len(MOUTH)))
              + "   (authored " + " ".join(f"{x:4.2f}" for x in authored) + ")")
    head, head_rms = fit_head(fit, before.head)
    print(f"\nhead: {head} (RMS log ratio {head_rms:.2f})")
    if args.calibrate:
        print(f"\nhead: how {args.calibrate} reads each clip's rendered head")
        readings = evaluated_readings(args.calibrate, clips, args.videos)
        head, head_rms = fit_head(fit, before.head, {c.name: readings[c.name] for c in fit})
        print(f"head, fitted to the evaluated spreads: {head} (RMS log ratio {head_rms:.2f})")
        print_head_readings(clips, head, readings)
    expression, expr_rms = fit_expression(fit, head)
    print(f"expressions: {expression} (RMS log ratio {', '.join(f'{k} {v:.2f}' for k, v in expr_rms.items())})")

    if args.calibrate:
        factors = {m: k for m, k in calibration(args.calibrate, [c.name for c in fit]).items()
                   if CALIBRATED[m][0] != "head"}  # the head is fitted to the evaluated spreads above
        print(f"\ncalibration by {args.calibrate} (evaluation ratios on the fit's clips): "
              + ", ".join(f"{m} x{k:.2f}" for m, k in factors.items()))
        head = json.loads(json.dumps(head))  # a deep copy to scale
        calibrate(table, head, expression, factors)
        print(f"head: {head}\nexpressions: {expression}")
    data = to_json(table, gain, coart, closure_db, head, expression, [c.name for c in fit], [c.name for c in clips if c.held_out])
    if args.calibrate:
        data["calibrated_by"] = {m: round(k, 3) for m, k in factors.items()}
    after = fitted_module.parse(data)
    print_figures("BEFORE (the constants shipped now)", figures(clips, before, per_unit))
    print_figures("AFTER (the constants just fitted)", figures(clips, after, per_unit))
    if args.write:
        path = ROOT / "facetalk" / "motion" / "fitted.json"
        path.write_text(json.dumps(data, indent=1) + "\n")
        print(f"\nwrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
