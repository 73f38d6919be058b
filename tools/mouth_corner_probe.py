"""Render forced mouth closures of photos (a bilabial M/B/P: mouthClose=1, mouthPress, small jaw) and
write enlarged mouth crops, to look for dark slits beyond the lip corners of an open-mouth photo.

    PYTHONPATH=$PWD python tools/mouth_corner_probe.py PHOTO... --out /tmp/mouthcorners/after
"""

from __future__ import annotations

import argparse
import dataclasses
import pickle
import time
from pathlib import Path

import cv2
import numpy as np

from facetalk.face import landmarks as L
from facetalk.face.basis import build_basis
from facetalk.media.image import write_image
from facetalk.motion.track import EXPRESSIONS, Motion
from facetalk.pipeline import rig_from_photo
from facetalk.render.paste import Paster
from facetalk.render.renderer import Renderer

ROOT = Path(__file__).resolve().parents[1]
POSES = {
    "mbp": dict(mouthClose=1.0, mouthPress=0.39, jawOpen=0.04),
    "jaw0": dict(mouthClose=1.0),
    "jaw10": dict(mouthClose=1.0, jawOpen=0.1),
    "jaw30": dict(mouthClose=1.0, jawOpen=0.3),
    "smile": dict(mouthClose=1.0, mouthSmileL=0.3, mouthSmileR=0.3),
    "rest": dict(),
}


def motion(**kw: float) -> Motion:
    e = np.zeros(len(EXPRESSIONS), np.float32)
    for k, v in kw.items():
        e[EXPRESSIONS.index(k)] = v
    return Motion(expression=e)


def load(path: Path, cache: Path | None):
    if cache is not None:
        f = cache / (path.stem + ".rig.pkl")
        if f.exists():
            return pickle.loads(f.read_bytes())
    rig, photo = rig_from_photo(path, full_frame=True)
    if cache is not None:
        cache.mkdir(parents=True, exist_ok=True)
        f.write_bytes(pickle.dumps((rig, photo)))
    return rig, photo


def load_fresh(path: Path, cache: Path | None):
    """A cached rig with its expression basis rebuilt by the current code."""
    rig, photo = load(path, cache)
    return dataclasses.replace(rig, basis=build_basis(rig.shape)), photo


def mouth_box(rig) -> tuple[int, int, int, int]:
    lips = rig.landmarks[list(L.LIPS_OUTER), :2]
    pts = lips @ rig.crop_to_photo[:, :2].T + rig.crop_to_photo[:, 2]
    lo, hi = pts.min(0), pts.max(0)
    w = hi[0] - lo[0]
    x0, x1 = int(lo[0] - 0.45 * w), int(hi[0] + 0.45 * w)
    cy = (lo[1] + hi[1]) / 2
    y0, y1 = int(cy - 0.45 * w), int(cy + 0.45 * w)
    return max(x0, 0), max(y0, 0), x1, y1


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("photos", nargs="+", type=Path)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--cache", type=Path, default=None)
    ap.add_argument("--time", type=int, default=0, help="time this many renders of the M pose")
    ap.add_argument("--box", default="", help="fixed crop rows:cols like 250:450,150:400")
    a = ap.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    for path in a.photos:
        rig, photo = load_fresh(path, a.cache)
        r = Renderer(rig)
        paster = Paster(photo, rig.crop_to_photo, rig.size)
        if a.box:
            rows, cols = a.box.split(",")
            y0, y1 = map(int, rows.split(":"))
            x0, x1 = map(int, cols.split(":"))
        else:
            x0, y0, x1, y1 = mouth_box(rig)
            print(path.name, 'box', x0, y0, x1, y1, photo.shape)
        tiles = []
        for name, kw in POSES.items():
            frame = paster.paste(r.render(motion(**kw)))
            crop = frame[y0:y1, x0:x1]
            k = 3.0 if a.box else 750.0 / crop.shape[1]
            crop = cv2.resize(crop, None, fx=k, fy=k, interpolation=cv2.INTER_CUBIC)
            write_image(a.out / f"{path.stem}_{name}.png", crop)
            tiles.append(cv2.putText(crop.copy(), name, (5, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 0), 1))
        sheet = np.vstack([np.hstack(tiles[:3]), np.hstack(tiles[3:])])
        write_image(a.out / f"{path.stem}_sheet.png", sheet)
        if a.time:
            m = motion(**POSES["mbp"])
            r.render(m)
            t = time.perf_counter()
            for _ in range(a.time):
                r.render(m)
            print(f"{path.name}: {1000 * (time.perf_counter() - t) / a.time:.2f} ms/frame (render only, {rig.size}px)")


if __name__ == "__main__":
    main()
