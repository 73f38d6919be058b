"""The composers: each job reads as its pipeline (see DESIGN.md's data flow).

photo -> FaceRig;  audio -> Features -> MotionTrack;  (FaceRig, MotionTrack) -> frames -> MP4.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from facetalk import __version__
from facetalk.audio.features import Features, audio_features
from facetalk.errors import FacetalkError
from facetalk.face.rig import FaceRig, build_rig
from facetalk.media._files import check_output_path
from facetalk.media.audio import SAMPLE_RATE, iter_audio, probe_audio
from facetalk.media.image import read_image
from facetalk.media.video import VideoWriter
from facetalk.motion.controls import Controls
from facetalk.motion.generate import generate
from facetalk.motion.track import MotionTrack
from facetalk.render.paste import FULL_FRAME_MAX_SIDE, Paster
from facetalk.render.renderer import Renderer

Progress = Callable[[int, int], None]  # (frames done, frames total)
FULL_FRAME_MAX_CROP = 1024  # px: beyond this the face is animated at 1024 and scaled up


@dataclass(frozen=True)
class RenderSummary:
    frames: int
    seconds: float  # wall time of the whole job
    video_seconds: float
    width: int
    height: int
    notes: tuple[str, ...] = ()

    @property
    def fps(self) -> float:
        return self.frames / max(self.seconds, 1e-9)


def rig_from_photo(path: str | os.PathLike[str], size: int = 512, face: int | None = None) -> tuple[FaceRig, np.ndarray]:
    photo = read_image(path)
    return build_rig(photo, size=size, face=face), photo


def features_from_audio(path: str | os.PathLike[str], fps: float) -> Features:
    info = probe_audio(path)
    features = audio_features(iter_audio(path, rate=SAMPLE_RATE), SAMPLE_RATE, fps)
    n_frames = max(1, int(round(info.duration * fps)))
    if len(features) < n_frames:  # container duration and decoded samples can differ by a frame
        pad = n_frames - len(features)
        features = Features(fps, *(np.pad(a, (0, pad)) for a in
                                   (features.loudness, features.level_db, features.brightness, features.active)),
                            features.phones)
    return features


def frames(rig: FaceRig, track: MotionTrack, paster: Paster | None = None) -> Iterator[np.ndarray]:
    """Render every frame of `track` (pasted into the full photo when `paster` is given)."""
    renderer = Renderer(rig)
    for i in range(len(track)):
        frame = renderer.render(track.frame(i))
        yield paster.paste(frame) if paster is not None else frame


def render_video(image: str | os.PathLike[str], audio: str | os.PathLike[str], out: str | os.PathLike[str], *,
                 size: int = 512, fps: float = 25.0, controls: Controls = Controls(), full_frame: bool = False,
                 face: int | None = None, progress: Progress | None = None) -> RenderSummary:
    """Photo + voice -> MP4 at `out` (written atomically: no partial file on failure)."""
    start = time.perf_counter()
    check_fps(fps)
    check_output_path(out)  # a misspelt folder should fail before any work is done
    rig, photo = rig_from_photo(image, size=size, face=face)
    if full_frame:  # animate at the photo's own resolution, so the pasted face is as sharp as the rest
        native = full_frame_crop_size(rig, photo)
        if native > rig.size * 1.15:
            rig = build_rig(photo, size=native, face=face)
    return write_video(rig, photo, audio, out, fps=fps, controls=controls, full_frame=full_frame,
                       progress=progress, started=start)


def full_frame_crop_size(rig: FaceRig, photo: np.ndarray) -> int:
    """Crop side that matches the pasted region's size in the full-frame output (even, capped)."""
    h, w = photo.shape[:2]
    shrink = min(1.0, FULL_FRAME_MAX_SIDE / max(h, w))
    side = rig.crop_to_photo[0, 0] * rig.size * shrink
    return int(min(FULL_FRAME_MAX_CROP, max(rig.size, side)) // 2 * 2)


def check_fps(fps: float) -> None:
    if not 1 <= fps <= 120:
        raise FacetalkError(f"--fps must be within 1..120, got {fps}")


def write_video(rig: FaceRig, photo: np.ndarray, audio: str | os.PathLike[str], out: str | os.PathLike[str], *,
                fps: float = 25.0, controls: Controls = Controls(), full_frame: bool = False,
                progress: Progress | None = None, started: float | None = None) -> RenderSummary:
    """An analysed photo + voice -> MP4 at `out`."""
    start = time.perf_counter() if started is None else started
    check_fps(fps)
    features = features_from_audio(audio, fps)
    track = generate(features, controls)
    paster = Paster(photo, rig.crop_to_photo, rig.size) if full_frame else None
    width, height = paster.size if paster else (rig.size, rig.size)
    notes = []
    if rig.n_faces > 1:
        notes.append(f"the photo has {rig.n_faces} faces; animated face {rig.face_index} "
                     f"(largest first; pick another with --face N)")
    metadata = {"comment": f"synthetic video made by facetalk {__version__}"}
    with VideoWriter(out, width, height, fps=fps, audio_path=audio, metadata=metadata) as writer:
        for i, frame in enumerate(frames(rig, track, paster)):
            writer.write(frame)
            if progress is not None:
                progress(i + 1, len(track))
    return RenderSummary(len(track), time.perf_counter() - start, len(track) / fps, width, height, tuple(notes))
