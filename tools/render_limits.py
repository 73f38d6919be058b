"""Render limits: a contact sheet of portraits at the edges of the motion range.

Each row is one portrait (a photo of a folder of images, or the first frame of a video); the
columns are the photo as rendered at rest, yaw -15 and +15 degrees, pitch -10 and +10 degrees,
jawOpen 1.0, and yaw 12 with jawOpen 0.8 together. A renderer that holds at these amplitudes shows
no seam, no cut-out edge along the head, no smeared band through hair or background, no squeezed
far cheek, and a mouth that opens as wide as a person's "ah" with teeth and tongue in place.

    python tools/render_limits.py ../shared/eval/images docs/render_limits.jpg \
        --video ../shared/eval/video_real/v15_grid_bbaf2n_man.mpg     # the README's sheet
    python tools/render_limits.py IMAGES OUT.png --cell 512 --only img08   # full-size cells

The image folder is an argument (the evaluation photos are not part of the project); when it is
absent the tool says so and exits with status 0, writing nothing.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

DEFAULT_PHOTOS = ("img01", "img02", "img05", "img06", "img08", "img10", "img15", "img17")
EXTENSIONS = {".jpg", ".jpeg", ".png", ".webp"}


def columns() -> list[tuple[str, dict[str, float]]]:
    """(label, Motion fields and expression weights) per column."""
    return [
        ("rest", {}),
        ("yaw -15", {"yaw": -15.0}),
        ("yaw +15", {"yaw": 15.0}),
        ("pitch -10", {"pitch": -10.0}),
        ("pitch +10", {"pitch": 10.0}),
        ("jaw 1.0", {"jawOpen": 1.0}),
        ("yaw 12 + jaw 0.8", {"yaw": 12.0, "jawOpen": 0.8}),
    ]


def motion_for(spec: dict[str, float]):
    from facetalk.motion.track import EXPRESSIONS, POSE, Motion

    expr = np.zeros(len(EXPRESSIONS), np.float32)
    pose = {}
    for name, value in spec.items():
        if name in POSE:
            pose[name] = value
        else:
            expr[EXPRESSIONS.index(name)] = value
    return Motion(expression=expr, **pose)


def first_frame(video: Path) -> np.ndarray:
    from facetalk.media.video import read_video_frames

    for _, frame in read_video_frames(video):
        return frame
    raise SystemExit(f"{video}: no frames")


def find_photos(folder: Path, only: list[str]) -> list[Path]:
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in EXTENSIONS)
    picked = []
    for key in only:
        match = [p for p in files if p.name.startswith(key)]
        picked.extend(match[:1])
    return picked


def label(img: np.ndarray, text: str) -> np.ndarray:
    out = img.copy()
    scale = max(0.5, img.shape[1] / 400)
    cv2.putText(out, text, (4, int(16 * scale) + 2), cv2.FONT_HERSHEY_SIMPLEX, 0.45 * scale, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(out, text, (4, int(16 * scale) + 2), cv2.FONT_HERSHEY_SIMPLEX, 0.45 * scale, (255, 255, 255), 1,
                cv2.LINE_AA)
    return out


def row_for(photo: np.ndarray, name: str, cell: int) -> np.ndarray:
    from facetalk.face.rig import build_rig
    from facetalk.render.renderer import Renderer

    renderer = Renderer(build_rig(photo, size=512))
    cells = []
    for i, (text, spec) in enumerate(columns()):
        frame = renderer.render(motion_for(spec))
        small = cv2.resize(frame, (cell, cell), interpolation=cv2.INTER_AREA) if cell != frame.shape[0] else frame
        cells.append(label(small, f"{name} {text}" if i == 0 else text))
    return np.concatenate(cells, 1)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("images", type=Path, help="folder of portraits (e.g. ../shared/eval/images)")
    ap.add_argument("out", type=Path, help="sheet to write (.jpg or .png)")
    ap.add_argument("--only", nargs="*", default=list(DEFAULT_PHOTOS), help="file-name prefixes, one row each")
    ap.add_argument("--video", nargs="*", default=[], type=Path, help="videos whose first frame adds a row")
    ap.add_argument("--cell", type=int, default=160, help="px per cell")
    ap.add_argument("--quality", type=int, default=85, help="JPEG quality")
    a = ap.parse_args(argv)
    if not a.images.is_dir():
        print(f"{a.images}: no such folder; nothing rendered")
        return 0
    from facetalk.media.image import read_image

    rows = []
    sources = [(p.stem.split("_")[0], lambda p=p: read_image(p)) for p in find_photos(a.images, a.only)]
    sources += [(v.stem.split("_")[0], lambda v=v: first_frame(v)) for v in a.video if v.is_file()]
    if not sources:
        print(f"{a.images}: none of {a.only} found; nothing rendered")
        return 0
    for name, load in sources:
        try:
            rows.append(row_for(load(), name, a.cell))
        except Exception as exc:  # one bad photo should not lose the sheet
            print(f"{name}: {exc}", file=sys.stderr)
    if not rows:
        return 1
    sheet = np.concatenate(rows, 0)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    bgr = cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR)
    params = [cv2.IMWRITE_JPEG_QUALITY, a.quality] if a.out.suffix.lower() in {".jpg", ".jpeg"} else []
    cv2.imwrite(str(a.out), bgr, params)
    print(f"wrote {a.out} ({sheet.shape[1]}x{sheet.shape[0]}, {a.out.stat().st_size // 1024} kB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
