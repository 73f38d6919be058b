"""Real blinks' timing and depth, measured the way `facetalk eval` measures them (dlib EAR).

For each real clip: dlib's eye aspect ratio per frame, blinks found by `signals.detect_blinks`,
and for each blink its depth (EAR at the deepest frame / its 2 s running median) and its phases,
from the drop profile d = 1 - EAR / median, interpolated between frames: closing (d rising from
10 % to 80 % of its peak), closed (d over 80 % of its peak), opening (back from 80 % to 10 %).
Prints each blink and the medians. With --photos, fits motion/eyes.py's CLOSE_S, HOLD_S, OPEN_S:
our lids' dlib response (EAR drop against eyeBlink, rendered on those photos, head straight) is
run through the same phase measure for candidate timings, and the timing whose phases match the
real medians best is printed. With --crops, writes the eyes at each blink's deepest frame next to
an open frame before it.

    PYTHONPATH=$PWD python tools/fit_blinks.py ../shared/eval/video_real --photos ../shared/eval/images
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np
from scipy.ndimage import median_filter

from facetalk.eval.dlib_face import DlibFace
from facetalk.eval.signals import EYE_L, EYE_R, detect_blinks, eye_aspect_ratio, fill_gaps
from facetalk.media.image import write_image
from facetalk.media.video import read_video_frames

LOW, HIGH = 0.1, 0.8  # shares of a blink's peak drop that bound its phases
CLOSURES = np.linspace(0.0, 1.0, 11)
FIT_STEP_S = 0.001  # the model blink is sampled this finely


def crossing(d: np.ndarray, level: float, start: int, step: int) -> float:
    """Fractional frame where d falls below `level`, walking from `start` by `step` (±1)."""
    i = start
    while 0 <= i + step < len(d) and d[i + step] >= level:
        i += step
    j = i + step
    if not 0 <= j < len(d):
        return float(i)
    return i + step * (d[i] - level) / max(d[i] - d[j], 1e-9)


def phases(d: np.ndarray, peak: int, fps: float) -> tuple[float, float, float]:
    """(closing, closed, opening) in seconds for the blink whose deepest frame is `peak`."""
    top = d[peak]
    lo_a, hi_a = crossing(d, LOW * top, peak, -1), crossing(d, HIGH * top, peak, -1)
    hi_b, lo_b = crossing(d, HIGH * top, peak, 1), crossing(d, LOW * top, peak, 1)
    return (hi_a - lo_a) / fps, (hi_b - hi_a) / fps, (lo_b - hi_b) / fps


def eyes(frame: np.ndarray, pts: np.ndarray, height: int = 80) -> np.ndarray:
    e = pts[list(EYE_R) + list(EYE_L)]
    lo, hi = e.min(0), e.max(0)
    pad = np.array([0.15, 0.35]) * (hi[0] - lo[0])
    x0, y0 = np.maximum(np.floor(lo - pad).astype(int), 0)
    x1, y1 = np.ceil(hi + pad).astype(int)
    c = frame[y0:y1, x0:x1]
    return cv2.resize(c, (round(c.shape[1] * height / c.shape[0]), height), interpolation=cv2.INTER_CUBIC)


def measure(path: Path, faces: DlibFace) -> tuple[np.ndarray, float, list[np.ndarray], list[np.ndarray | None]]:
    faces.reset()
    times, ears, frames, marks = [], [], [], []
    for t, frame in read_video_frames(path):
        found = faces.landmarks(np.ascontiguousarray(frame))
        times.append(t)
        ears.append(float(eye_aspect_ratio(found[0][None])[0]) if found else np.nan)
        frames.append(frame)
        marks.append(found[0] if found else None)
    fps = (len(times) - 1) / max(times[-1] - times[0], 1e-9)
    return np.asarray(ears), fps, frames, marks


def drop_curve(photos: list[Path], faces: DlibFace) -> np.ndarray:
    """Mean EAR drop (1 - EAR / open EAR) of our rendered lids at each of CLOSURES."""
    from blink_probe import blink_motion

    from facetalk.errors import FacetalkError
    from facetalk.pipeline import rig_from_photo
    from facetalk.render.paste import Paster
    from facetalk.render.renderer import Renderer

    drops = []
    for path in photos:
        try:
            rig, photo = rig_from_photo(path, full_frame=True)
        except FacetalkError:
            continue
        renderer, paster = Renderer(rig), Paster(photo, rig.crop_to_photo, rig.size)
        ears = []
        for c in CLOSURES:
            faces.reset()
            found = faces.landmarks(np.ascontiguousarray(paster.paste(renderer.render(blink_motion(float(c))))))
            ears.append(float(eye_aspect_ratio(found[0][None])[0]) if found else np.nan)
        if np.isfinite(ears).all():
            drops.append(1.0 - np.asarray(ears) / ears[0])
    curve = np.maximum.accumulate(np.mean(drops, axis=0))  # dlib's reading saturates, never reverses
    print(f"our lids' EAR drop at eyeBlink {', '.join(f'{c:.1f}' for c in CLOSURES)}: "
          f"{', '.join(f'{d:.2f}' for d in curve)} (mean of {len(drops)} photos)")
    return curve


def fit_timing(curve: np.ndarray, target: np.ndarray) -> tuple[float, float, float]:
    """(CLOSE_S, HOLD_S, OPEN_S) whose blink, seen through `curve`, has phases nearest `target`
    (closing, closed, opening in s; squared log error)."""
    import facetalk.motion.eyes as eyes

    t = np.arange(0.0, 1.0, FIT_STEP_S)
    best, best_err = (eyes.CLOSE_S, eyes.HOLD_S, eyes.OPEN_S), np.inf
    saved = best
    try:
        for close in np.arange(0.04, 0.16, 0.01):
            for hold in np.arange(0.0, 0.11, 0.01):
                for open_ in np.arange(0.08, 0.30, 0.01):
                    eyes.CLOSE_S, eyes.HOLD_S, eyes.OPEN_S = close, hold, open_
                    d = np.interp(eyes.blink_shape(t), CLOSURES, curve)
                    got = np.asarray(phases(d, int(np.argmax(d)), 1.0 / FIT_STEP_S))
                    err = float(np.sum(np.log(np.maximum(got, 1e-3) / target) ** 2))
                    if err < best_err:
                        best, best_err = (float(close), float(hold), float(open_)), err
    finally:
        eyes.CLOSE_S, eyes.HOLD_S, eyes.OPEN_S = saved
    return best


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("videos", type=Path)
    ap.add_argument("--crops", type=Path)
    ap.add_argument("--photos", type=Path, help="folder of portraits: fit the blink timing on our lids")
    args = ap.parse_args(argv)
    faces = DlibFace.load()
    rows = []
    seen: list[np.ndarray] = []
    for path in sorted(p for p in args.videos.iterdir() if p.is_file()):
        ear, fps, frames, marks = measure(path, faces)
        if any(len(e) == len(ear) and np.allclose(e, ear, equal_nan=True) for e in seen):
            print(f"{path.stem}: the same frames as a clip before it (left out)")
            continue
        seen.append(ear)
        x = fill_gaps(ear)
        base = median_filter(x, size=max(3, int(round(2.0 * fps)) | 1), mode="nearest")
        d = 1.0 - x / np.maximum(base, 1e-6)
        blinks = detect_blinks(ear, fps)
        rate = len(blinks) / (len(ear) / fps / 60)
        print(f"{path.stem}: {len(ear)} frames at {fps:.1f} fps, {len(blinks)} blinks ({rate:.0f}/min)")
        for k, b in enumerate(blinks):
            close, hold, open_ = phases(d, int(b), fps)
            rows.append((1 - d[b], close, hold, open_))
            print(f"  frame {b}: EAR {x[b]:.3f} = {1 - d[b]:.2f} of open; closing {close * 1000:.0f} ms, "
                  f"closed {hold * 1000:.0f} ms, opening {open_ * 1000:.0f} ms")
            if args.crops is not None and marks[b] is not None:
                before = max(0, int(b) - int(0.5 * fps))
                ref = marks[before] if marks[before] is not None else marks[b]
                pair = [eyes(frames[before], ref), eyes(frames[b], marks[b])]
                args.crops.mkdir(parents=True, exist_ok=True)
                write_image(args.crops / f"{path.stem}_{k}.png", np.hstack(pair))
    if rows:
        r = np.asarray(rows)
        print(f"{len(r)} blinks; median depth {np.median(r[:, 0]):.2f} of open "
              f"(quartiles {np.percentile(r[:, 0], 25):.2f}-{np.percentile(r[:, 0], 75):.2f}); "
              f"closing {np.median(r[:, 1]) * 1000:.0f} ms, closed {np.median(r[:, 2]) * 1000:.0f} ms, "
              f"opening {np.median(r[:, 3]) * 1000:.0f} ms")
        if args.photos is not None:
            photos = sorted(p for p in args.photos.iterdir() if p.is_file())
            curve = drop_curve(photos, faces)
            close, hold, open_ = fit_timing(curve, np.median(r[:, 1:], axis=0))
            level = float(np.interp(HIGH * curve[-1], curve, CLOSURES))
            print(f"fitted: CLOSE_S, HOLD_S, OPEN_S = {close:.2f}, {hold:.2f}, {open_:.2f}; "
                  f"CLOSED_LEVEL = {level:.2f} (our lids at {HIGH:.0%} of their deepest drop)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
