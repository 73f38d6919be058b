"""Cross-reenactment: real talking clips drive photos of other people; does the photo follow?

For every clip in VIDEOS and every photo, `facetalk animate` (the same path a user takes) moves
the photo as the clip's speaker moves, and then the clip and the output are measured by the same
dlib code as the self-reenactment evaluation: the mouth opening (inner-lip gap / face height) and
the head's yaw and pitch, frame against frame. A driven face has no excuse for lagging or missing a
syllable, so these correlations should be high; the mouth's is the target (>= 0.8).

The driving clip is tracked and encoded once and rendered onto every photo. Outputs stay in
OUT/reenacted, with a contact sheet per pair (driver above, photo below).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from facetalk import __version__
from facetalk.errors import FacetalkError
from facetalk.eval import signals
from facetalk.eval.dlib_face import DlibFace
from facetalk.eval.head_pose import head_angles
from facetalk.eval.report import _jsonable, _md_text, _write_atomically, contact_sheet
from facetalk.eval.run import find_videos, report_folder
from facetalk.media.image import write_image
from facetalk.media.video import read_video_frames

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")
SHEET_FRAMES = 6
METRICS = ("mouth_corr", "yaw_corr", "pitch_corr")
DESCRIPTIONS = {
    "mouth_corr": "Pearson r of the output's mouth opening with the driver's, frame by frame (target >= 0.8)",
    "yaw_corr": "the same for the head's yaw (dlib perspective fit, filtered over 0.4 s)",
    "pitch_corr": "the same for the head's pitch",
    "fps": "speed of rendering and encoding the output, frames per wall second (the driver is tracked and "
           "encoded once per clip, not counted here)",
}

Log = Callable[[str], None]


def find_photos(paths: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Photo files among `paths`; a folder stands for the images in it."""
    photos: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            photos += sorted(q for q in p.iterdir() if q.is_file() and q.suffix.lower() in IMAGE_SUFFIXES)
        elif p.is_file():
            photos.append(p)
        else:
            raise FacetalkError(f"--reenact {p}: no such photo or folder")
    if not photos:
        raise FacetalkError("--reenact: no photos found; give photo files or folders of them (jpg, png, webp)")
    return photos


def measure(path: str | os.PathLike[str], faces: DlibFace, sheet_every: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[np.ndarray]]:
    """(times from the first frame, mouth opening, (T, 3) smoothed head angles, a few frames)."""
    faces.reset()
    times, marks, kept = [], [], []
    size = (0, 0)
    for i, (t, frame) in enumerate(read_video_frames(path)):
        frame = np.ascontiguousarray(frame)
        size = (frame.shape[1], frame.shape[0])
        times.append(t)
        found = faces.landmarks(frame)
        marks.append(np.full((68, 2), np.nan) if found is None else found[0])
        if i % sheet_every == sheet_every // 2 and len(kept) < SHEET_FRAMES:
            kept.append(frame)
    t = np.asarray(times) - times[0]
    lm = np.asarray(marks)
    step = float(np.median(np.diff(t))) if len(t) > 1 else 0.04
    angles = signals.smooth_angles(head_angles(lm, *size), 1.0 / step)
    return t, signals.mouth_opening(lm), angles, kept


def compare(driver: tuple[np.ndarray, np.ndarray, np.ndarray], output: tuple[np.ndarray, np.ndarray, np.ndarray]) -> dict:
    """The correlations of the output's curves with the driver's, at the output's frame times."""
    t_d, mouth_d, angles_d = driver
    t_o, mouth_o, angles_o = output
    return {
        "mouth_corr": signals.pearson(mouth_o, signals.resample(t_d, mouth_d, t_o)),
        "yaw_corr": signals.pearson(angles_o[:, 0], signals.resample(t_d, angles_d[:, 0], t_o)),
        "pitch_corr": signals.pearson(angles_o[:, 1], signals.resample(t_d, angles_d[:, 1], t_o)),
    }


def evaluate_reenactment(videos: str | os.PathLike[str], photos: Iterable[str | os.PathLike[str]],
                         out_dir: str | os.PathLike[str], log: Log = lambda _: None) -> dict:
    """Drive every photo with every clip; write reenact.json and reenact.md into `out_dir`."""
    from facetalk.pipeline import encode_driving, rig_from_photo, write_animation

    clips, pictures = find_videos(videos), find_photos(photos)
    out = report_folder(out_dir, "reenacted")
    faces = DlibFace.load()
    start = time.perf_counter()
    rigs, skipped = {}, []
    for photo in pictures:
        try:
            rigs[photo.stem] = rig_from_photo(photo)
        except FacetalkError as exc:
            skipped.append({"name": photo.stem, "reason": str(exc)})
    rows = []
    for clip in clips:
        try:
            motion = encode_driving(clip)
        except FacetalkError as exc:
            skipped.append({"name": clip.stem, "reason": str(exc)})
            log(f"{clip.stem}: skipped: {exc}")
            continue
        every = max(1, motion.frames // SHEET_FRAMES)
        *driver, driver_sheet = measure(clip, faces, every)
        for name, (rig, photo) in rigs.items():
            video = out / "reenacted" / f"{clip.stem}__{name}.mp4"
            summary = write_animation(rig, photo, motion, clip, video)
            *output, sheet = measure(video, faces, every)
            write_image(out / f"{clip.stem}__{name}_frames.png", contact_sheet(driver_sheet, sheet, labels=("driver", "output")))
            rows.append({"clip": clip.stem, "photo": name, **compare(driver, output), "fps": summary.fps})
            log(f"{clip.stem} -> {name}: mouth r = {rows[-1]['mouth_corr']:.2f}")
    report = {"facetalk_version": __version__, "videos": str(Path(videos).resolve()),
              "seconds": round(time.perf_counter() - start, 1), "pairs": rows, "mean": _means(rows),
              "skipped": skipped}
    clean = _jsonable(report)
    _write_atomically(out / "reenact.json", lambda p: p.write_text(json.dumps(clean, indent=2) + "\n"))
    _write_atomically(out / "reenact.md", lambda p: p.write_text(markdown(clean)))
    return clean


def _means(rows: list[dict]) -> dict:
    out = {}
    for m in (*METRICS, "fps"):
        values = [r[m] for r in rows if r.get(m) is not None and np.isfinite(r[m])]
        out[m] = float(np.mean(values)) if values else None
    return out


def _cell(value: float | None, decimals: int = 2) -> str:
    return "–" if value is None else f"{value:.{decimals}f}"


def markdown(report: dict) -> str:
    """The report as a page: one row per (clip, photo) pair and the mean."""
    lines = ["# facetalk evaluation: cross-reenactment", "",
             "Each real clip drives photos of other people through `facetalk animate`; the driver and "
             "the output are measured by the same dlib code.", "",
             "| clip | photo | " + " | ".join(METRICS) + " | fps |", "|:--|:--|" + "--:|" * (len(METRICS) + 1)]
    for r in report["pairs"]:
        cells = [_cell(r.get(m)) for m in METRICS] + [_cell(r.get("fps"), 1)]
        lines.append(f"| {_md_text(r['clip'])} | {_md_text(r['photo'])} | " + " | ".join(cells) + " |")
    mean = report["mean"]
    cells = [_cell(mean.get(m)) for m in METRICS] + [_cell(mean.get("fps"), 1)]
    lines += ["| **mean** | | " + " | ".join(cells) + " |", "", "## Skipped", ""]
    lines += [f"- {_md_text(s['name'])}: {_md_text(s['reason'])}" for s in report["skipped"]] or ["none"]
    lines += ["", "## Metrics", ""] + [f"- **{m}**: {d}." for m, d in DESCRIPTIONS.items()]
    return "\n".join(lines) + "\n"
