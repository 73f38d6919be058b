"""The README's blink sheet: real speakers' eyes open and at a blink's deepest frame, next to
ours open, half shut (eyeBlink 0.5) and shut (1.0) on a few photos.

    PYTHONPATH=$PWD python tools/blink_sheet.py ../shared/eval docs/blinks.jpg
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

from facetalk.eval.dlib_face import DlibFace
from facetalk.face import landmarks as L
from facetalk.eval.signals import EYE_L, EYE_R, detect_blinks, eye_aspect_ratio
from facetalk.media.image import write_image
from facetalk.media.video import read_video_frames
from facetalk.motion.track import EXPRESSIONS, Motion
from facetalk.pipeline import rig_from_photo
from facetalk.render.paste import Paster
from facetalk.render.renderer import Renderer

REAL = ("v01_hdtf_WDA_AOC_8s.mp4", "v23_liveportrait_woman_expressive.mp4", "v17_grid_swwp2s_man_grey.mpg")
OURS = ("img01_woman_eastasian_photo_512.jpg", "img06_cartoon3d_boy.jpg", "img08_painting_monalisa.jpg",
        "img11_painting_elderly_woman.png", "img02_man_glasses_curly_photo_720.jpg")
CELL = (300, 110)  # px: one eye-pair crop


def eyes_crop(frame: np.ndarray, e: np.ndarray) -> np.ndarray:
    """Around the eye points `e` (px, both eyes), at CELL's aspect, resized to CELL."""
    centre = (e.min(0) + e.max(0)) / 2
    w = (e[:, 0].max() - e[:, 0].min()) * 1.35
    h = w * CELL[1] / CELL[0]
    x0, y0 = np.round(centre - (w / 2, h / 2)).astype(int)
    x1, y1 = x0 + int(round(w)), y0 + int(round(h))
    pad = max(0, -x0, -y0, x1 - frame.shape[1], y1 - frame.shape[0])
    big = cv2.copyMakeBorder(frame, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    crop = big[y0 + pad:y1 + pad, x0 + pad:x1 + pad]
    return cv2.resize(crop, CELL, interpolation=cv2.INTER_AREA if crop.shape[1] > CELL[0] else cv2.INTER_CUBIC)


def label(img: np.ndarray, text: str) -> np.ndarray:
    out = img.copy()
    cv2.putText(out, text, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(out, text, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def real_row(path: Path, faces: DlibFace) -> list[np.ndarray] | None:
    """Open (0.5 s before) and deepest frame of the clip's deepest blink, by the eval's measure."""
    faces.reset()
    frames, marks, ears = [], [], []
    for _, frame in read_video_frames(path):
        found = faces.landmarks(np.ascontiguousarray(frame))
        frames.append(frame)
        marks.append(found[0] if found else None)
        ears.append(float(eye_aspect_ratio(found[0][None])[0]) if found else np.nan)
        if len(frames) > 300:
            break
    ear = np.asarray(ears)
    blinks = detect_blinks(ear, 25.0)
    if not len(blinks):
        return None
    b = int(blinks[np.argmin(ear[blinks])])
    before = max(0, b - 12)
    ref = (marks[before] if marks[before] is not None else marks[b])[list(EYE_R) + list(EYE_L)]
    return [label(eyes_crop(frames[before], ref), f"real {path.stem[:3]}: open"),
            label(eyes_crop(frames[b], ref), f"blink, EAR {ear[b] / np.nanmedian(ear):.2f}")]


def our_row(path: Path, faces: DlibFace) -> list[np.ndarray]:
    rig, photo = rig_from_photo(path, full_frame=True)
    renderer, paster = Renderer(rig), Paster(photo, rig.crop_to_photo, rig.size)
    a = rig.crop_to_photo
    scale = paster.size[0] / photo.shape[1]
    eyes = rig.landmarks[list(L.EYE_R) + list(L.EYE_L), :2]
    ref = (eyes @ a[:, :2].T + a[:, 2]) * scale  # MediaPipe's eye contours, in the pasted frame
    cells, open_ear = [], np.nan
    for closure in (0.0, 0.5, 1.0):
        e = np.zeros(len(EXPRESSIONS), np.float32)
        e[EXPRESSIONS.index("eyeBlinkL")] = e[EXPRESSIONS.index("eyeBlinkR")] = closure
        frame = np.ascontiguousarray(paster.paste(renderer.render(Motion(expression=e))))
        faces.reset()
        found = faces.landmarks(frame)
        ear = float(eye_aspect_ratio(found[0][None])[0]) if found else np.nan
        open_ear = ear if closure == 0 else open_ear
        reading = f"EAR {ear / open_ear:.2f}" if np.isfinite(ear / open_ear) else "dlib: no face"
        text = f"ours {path.stem[:5]}: open" if closure == 0 else f"eyeBlink {closure:g}, {reading}"
        cells.append(label(eyes_crop(frame, ref), text))
    return cells


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("shared_eval", type=Path, help="the shared evaluation folder (video_real/, images/)")
    ap.add_argument("out", type=Path)
    args = ap.parse_args(argv)
    faces = DlibFace.load()
    blank = np.zeros((CELL[1], CELL[0], 3), np.uint8)
    rows = []
    for name in REAL:
        row = real_row(args.shared_eval / "video_real" / name, faces)
        if row is not None:
            rows.append(row + [blank])
    for name in OURS:
        rows.append(our_row(args.shared_eval / "images" / name, faces))
    pad = lambda c: cv2.copyMakeBorder(c, 2, 2, 2, 2, cv2.BORDER_CONSTANT, value=(255, 255, 255))  # noqa: E731
    write_image(args.out, np.vstack([np.hstack([pad(c) for c in row]) for row in rows]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
