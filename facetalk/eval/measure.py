"""One pass over a video file: every per-frame measurement the metrics need.

A clip is streamed (never held whole in memory); what a metric needs later is kept per frame
(landmarks, angles, gaze, image statistics) plus a handful of frames for the contact sheet.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import cv2
import numpy as np

from facetalk.eval import signals
from facetalk.eval.dlib_face import DlibFace
from facetalk.eval.head_pose import head_angles
from facetalk.eval.mp_face import MediaPipeProbe
from facetalk.eval.series import ClipSeries
from facetalk.media.audio import SAMPLE_RATE, read_audio
from facetalk.media.video import read_video_frames

ID_SAMPLES = 25  # frames per clip that get an identity embedding (73 ms each)
SHEET_FRAMES = 6  # frames per clip on the contact sheet
PERSON_MARGIN = 0.02  # the person mask is grown by this share of the frame width before PSNR
MIN_BACKGROUND = 0.03  # share of the frame: less visible background than this gives no PSNR
SHARPNESS_WIDTH = 128  # px: face crops are resampled to this width before the Laplacian


@dataclass(frozen=True)
class Reference:
    """The photo a clip is compared with: the real clip's first frame with a face."""

    image: np.ndarray
    landmarks: np.ndarray  # (68, 2)
    embedding: np.ndarray  # (128,)
    face_gray: np.ndarray  # grey face crop at SHARPNESS_WIDTH, for the sharpness ratio
    frame_index: int
    time: float  # s into the real clip


@dataclass(frozen=True)
class ClipMeasure:
    series: ClipSeries
    sharpness: np.ndarray  # (T,) face-region Laplacian variance / the photo's
    background_psnr: np.ndarray  # (T - 1,) dB, frame 0 against each later frame
    id_distances: np.ndarray  # (ID_SAMPLES or fewer,) embedding distance to the photo
    sheet: list[np.ndarray]  # SHEET_FRAMES frames evenly over the clip


def face_box(landmarks: np.ndarray, width: int, height: int, grow: float = 0.1) -> tuple[int, int, int, int]:
    """Integer (x0, y0, x1, y1) around the 68 points, grown by `grow` of its size, inside the frame."""
    lo, hi = landmarks.min(0), landmarks.max(0)
    pad = (hi - lo) * grow
    x0, y0 = np.floor(lo - pad).astype(int)
    x1, y1 = np.ceil(hi + pad).astype(int)
    return max(0, x0), max(0, y0), min(width, x1), min(height, y1)


def face_gray(frame: np.ndarray, landmarks: np.ndarray, size: tuple[int, int] | None = None) -> np.ndarray:
    """The grey face region, resampled to `size` (w, h). The photo's and every frame's crops go
    through the same resampling, which would otherwise blur only one side of the ratio."""
    x0, y0, x1, y1 = face_box(landmarks, frame.shape[1], frame.shape[0])
    crop = cv2.cvtColor(np.ascontiguousarray(frame[y0:y1, x0:x1]), cv2.COLOR_RGB2GRAY)
    return crop if size is None else cv2.resize(crop, size, interpolation=cv2.INTER_AREA)


def find_reference(path: str | os.PathLike[str], faces: DlibFace, max_seconds: float = 5.0) -> Reference | None:
    """The first frame (within `max_seconds`) where dlib finds a face, analysed."""
    faces.reset()
    for index, (t, frame) in enumerate(read_video_frames(path)):
        if t > max_seconds:
            break
        frame = np.ascontiguousarray(frame)
        if faces.detect(frame) is None:
            continue
        pts, shape = faces.landmarks(frame)
        faces.reset()
        crop = face_gray(frame, pts)
        size = (SHARPNESS_WIDTH, max(1, round(SHARPNESS_WIDTH * crop.shape[0] / crop.shape[1])))
        return Reference(frame, pts, faces.embedding(frame, shape), face_gray(frame, pts, size), index, t)
    return None


def measure_clip(path: str | os.PathLike[str], name: str, reference: Reference, faces: DlibFace,
                 start: float = 0.0) -> ClipMeasure:
    """Measure the video at `path` from `start` seconds on (times in the series count from there)."""
    faces.reset()
    times, marks, gaze, sharp, bg_psnr = [], [], [], [], []
    ids: list[float] = []
    kept: list[tuple[float, np.ndarray]] = []
    first: tuple[np.ndarray, np.ndarray] | None = None
    ref_h, ref_w = reference.face_gray.shape
    ref_sharp = max(signals.laplacian_variance(reference.face_gray), 1e-9)
    total = _frame_count_estimate(path, start)
    embed_every = max(1, math.ceil(total / ID_SAMPLES))
    sheet_every = max(1, total // SHEET_FRAMES)
    size = (0, 0)
    with MediaPipeProbe() as probe:
        for t, frame in read_video_frames(path):
            if t < start - 1e-6:
                continue
            frame = np.ascontiguousarray(frame)
            i = len(times)
            size = (frame.shape[1], frame.shape[0])
            times.append(t - start)
            found = faces.landmarks(frame)
            if found is None:
                marks.append(np.full((68, 2), np.nan))
                sharp.append(np.nan)
            else:
                pts, shape = found
                marks.append(pts)
                sharp.append(signals.laplacian_variance(face_gray(frame, pts, (ref_w, ref_h))) / ref_sharp)
                if i % embed_every == embed_every // 2:
                    ids.append(float(np.linalg.norm(faces.embedding(frame, shape) - reference.embedding)))
            gaze.append(probe.gaze(frame))
            person = _grow(probe.person(frame), PERSON_MARGIN)
            if first is None:
                first = (frame, person)
            else:
                background = ~(first[1] | person)
                ok = background.mean() >= MIN_BACKGROUND
                bg_psnr.append(signals.psnr(first[0], frame, background) if ok else np.nan)
            if i % sheet_every == sheet_every // 2 and len(kept) < SHEET_FRAMES:
                kept.append((t, frame))
    if not times:
        raise ValueError(f"{name}: no frames after {start:.2f} s")
    times_a = np.asarray(times)
    landmarks = np.asarray(marks)
    step = float(np.median(np.diff(times_a))) if len(times_a) > 1 else 1.0 / 25
    fps = len(times_a) / (times_a[-1] + step)  # the average rate of a variable-rate clip
    samples = read_audio(path, rate=SAMPLE_RATE)[int(round(start * SAMPLE_RATE)):]
    ear = signals.eye_aspect_ratio(landmarks)
    series = ClipSeries(
        name=name, times=times_a, fps=fps, size=size, landmarks=landmarks,
        mouth=signals.mouth_opening(landmarks), angles=signals.smooth_angles(head_angles(landmarks, *size), fps), ear=ear,
        blinks=signals.detect_blinks(ear, fps),
        envelope=signals.speech_envelope(samples, SAMPLE_RATE, times_a, 1.0 / fps),
        gaze=np.asarray(gaze))
    return ClipMeasure(series, np.asarray(sharp), np.asarray(bg_psnr), np.asarray(ids), [f for _, f in kept])


def _grow(mask: np.ndarray, share: float) -> np.ndarray:
    r = max(1, int(round(share * mask.shape[1])))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
    return cv2.dilate(mask.astype(np.uint8), kernel) > 0


def _frame_count_estimate(path: str | os.PathLike[str], start: float) -> int:
    from facetalk.media.video import probe_video

    info = probe_video(path)
    return max(1, int(round((info.duration - start) * info.fps)))
