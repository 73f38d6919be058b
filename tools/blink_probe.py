"""Measure how closed a rendered blink looks to dlib: EAR per lid closure, per photo and head yaw.

For the built-in portrait and each photo given (files or folders, e.g. ../shared/eval/images) the rig is
built as `facetalk eval` builds it (full frame, native crop size), a forced blink is rendered at
several closures and head yaws, pasted into the photo, and dlib's eye aspect ratio is measured on
each frame. Prints EAR(closure) / EAR(open) per photo and writes eye crops (open / half / shut). With
--video, also renders a clip with a forced blink (motion/eyes.py's blink_shape) every
VIDEO_BLINK_EVERY_S, encodes it as `facetalk generate` does (H.264) and counts the blinks that
`signals.detect_blinks` finds in it.

    PYTHONPATH=$PWD python tools/blink_probe.py ../shared/eval/images --out /tmp/blinks
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

from facetalk.errors import FacetalkError
from facetalk.eval.dlib_face import DlibFace
from facetalk.eval.signals import EYE_L, EYE_R, detect_blinks, eye_aspect_ratio
from facetalk.media.image import write_image
from facetalk.media.video import VideoWriter, read_video_frames
from facetalk.motion.eyes import blink_shape
from facetalk.motion.track import EXPRESSIONS, Motion
from facetalk.pipeline import rig_from_photo
from facetalk.render.paste import Paster
from facetalk.render.renderer import Renderer

CLOSURES = (0.0, 0.5, 0.8, 1.0)
YAWS = (0.0, -15.0, 15.0)
ROOT = Path(__file__).resolve().parents[1]
VIDEO_FPS = 25.0
VIDEO_BLINK_EVERY_S = 2.5
VIDEO_BLINKS = 4


def blink_motion(closure: float, yaw: float = 0.0) -> Motion:
    e = np.zeros(len(EXPRESSIONS), np.float32)
    e[EXPRESSIONS.index("eyeBlinkL")] = e[EXPRESSIONS.index("eyeBlinkR")] = closure
    return Motion(yaw=yaw, expression=e)


def eye_crop(frame: np.ndarray, pts: np.ndarray, height: int = 96) -> np.ndarray:
    eyes = pts[list(EYE_R) + list(EYE_L)]
    lo, hi = eyes.min(0), eyes.max(0)
    pad = np.array([0.25, 1.2]) * (hi[0] - lo[0]) * np.array([1.0, 0.25])
    x0, y0 = np.maximum(np.floor(lo - pad).astype(int), 0)
    x1, y1 = np.ceil(hi + pad).astype(int)
    crop = frame[y0:y1, x0:x1]
    return cv2.resize(crop, (max(1, round(crop.shape[1] * height / crop.shape[0])), height),
                      interpolation=cv2.INTER_CUBIC)


def probe(path: Path, faces: DlibFace, out: Path | None) -> dict[float, list[float]]:
    rig, photo = rig_from_photo(path, full_frame=True)
    renderer, paster = Renderer(rig), Paster(photo, rig.crop_to_photo, rig.size)
    result: dict[float, list[float]] = {}
    crops = []
    for yaw in YAWS:
        ears = []
        for closure in CLOSURES:
            frame = np.ascontiguousarray(paster.paste(renderer.render(blink_motion(closure, yaw))))
            faces.reset()
            found = faces.landmarks(frame)
            if found is None:
                ears.append(float("nan"))
                continue
            ears.append(float(eye_aspect_ratio(found[0][None])[0]))
            if yaw == 0.0:
                crops.append(eye_crop(frame, found[0]))
        result[yaw] = ears
    if out is not None and crops:
        w = max(c.shape[1] for c in crops)
        sheet = np.vstack([cv2.copyMakeBorder(c, 0, 2, 0, w - c.shape[1], cv2.BORDER_CONSTANT) for c in crops])
        write_image(out / f"{path.stem}_eyes.png", sheet)
    return result


def forced_blinks_video(path: Path, faces: DlibFace, out: Path) -> tuple[int, np.ndarray]:
    """(blinks found, EAR series) in an encoded clip of `path` with VIDEO_BLINKS forced blinks."""
    rig, photo = rig_from_photo(path, full_frame=True)
    renderer, paster = Renderer(rig), Paster(photo, rig.crop_to_photo, rig.size)
    n = int(VIDEO_FPS * VIDEO_BLINK_EVERY_S * (VIDEO_BLINKS + 0.5))
    t = np.arange(n) / VIDEO_FPS
    lids = np.zeros(n)
    for k in range(VIDEO_BLINKS):
        lids = np.maximum(lids, blink_shape(t - VIDEO_BLINK_EVERY_S * (k + 0.7)))
    clip = out / f"{path.stem}_blinks.mp4"
    w, h = paster.size
    with VideoWriter(clip, w, h, fps=VIDEO_FPS) as writer:
        for c in lids:
            writer.write(paster.paste(renderer.render(blink_motion(float(c)))))
    faces.reset()
    ears = []
    for _, frame in read_video_frames(clip):
        found = faces.landmarks(np.ascontiguousarray(frame))
        ears.append(float(eye_aspect_ratio(found[0][None])[0]) if found else np.nan)
    ear = np.asarray(ears)
    return len(detect_blinks(ear, VIDEO_FPS)), ear


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("images", nargs="*", type=Path, help="photos or folders of photos")
    ap.add_argument("--out", type=Path)
    ap.add_argument("--video", action="store_true", help="also count detect_blinks' blinks in an encoded clip")
    args = ap.parse_args(argv)
    images = [ROOT / "facetalk/assets/portrait.png"]
    for p in args.images:
        images += sorted(f for f in p.iterdir() if f.is_file()) if p.is_dir() else [p]
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
    faces = DlibFace.load()
    print("photo; per yaw: EAR open, then EAR/open at closure " + " ".join(f"{c:g}" for c in CLOSURES[1:]))
    worst = 0.0
    for path in images:
        try:
            res = probe(path, faces, args.out)
        except FacetalkError as exc:
            print(f"{path.stem}: skipped ({exc})")
            continue
        cells = []
        for yaw, ears in res.items():
            base = ears[0]
            ratios = [e / base for e in ears[1:]]
            if np.isfinite(ratios[-1]):
                worst = max(worst, ratios[-1])
            cells.append(f"yaw {yaw:+.0f}: {base:.3f} " + " ".join(f"{r:.2f}" for r in ratios))
        if args.video:
            found, ear = forced_blinks_video(path, faces, args.out or Path("."))
            cells.append(f"video: {found}/{VIDEO_BLINKS} blinks found, EAR min/median {np.nanmin(ear) / np.nanmedian(ear):.2f}")
        print(f"{path.stem:36s} " + " | ".join(cells), flush=True)
    print(f"worst EAR(shut)/EAR(open): {worst:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
