"""Video -> per-frame 478 MediaPipe landmarks, streamed: the first stage of reenactment.

MediaPipe's face mesh runs in tracking mode (each frame starts from the last frame's face, which
is steadier and faster than detecting anew) with refined irises for the gaze. It does not see the
whole frame: a square crop that follows the face (the face about half its width, as in the
FaceRig) is resampled to CROP_PX first, so a small face in a big frame is tracked as precisely as
a close-up, and the crop only moves when the face has moved noticeably (a crop that shook with
every frame would feed its own jitter back into the landmarks). When the face is lost, the
robust photo detector (`find_faces`) looks for it again every few frames.

Only the current frame is held: memory is flat in the video's length.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass

import numpy as np

from facetalk.face.detect import _mp, _quiet_native_logs, crop_square, find_faces
from facetalk.face.landmarks import CHIN, FOREHEAD, N_LANDMARKS
from facetalk.media.video import read_video_frames

CROP_PX = 320  # px: the face (about half the crop) is then ~160 px, above the mesh model's 192 px ROI input
FACE_SHARE = 0.5  # face width as a share of the tracking crop's side
RECENTRE = 0.08  # move the crop when the face centre has moved this share of the crop side
RESIZE = 0.12  # ... or its size has changed by this share
REDETECT_EVERY = 5  # frames between detector runs while no face is tracked


@dataclass(frozen=True)
class TrackedFrame:
    """One video frame's face: `landmarks` (478, 3) in frame px (z: depth on the same px scale,
    larger = farther), or None where no face was found."""

    index: int
    time: float  # s, the frame's display time
    landmarks: np.ndarray | None
    size: tuple[int, int]  # (width, height) of the frame


def _box_of(landmarks: np.ndarray) -> tuple[float, float, float]:
    """(cx, cy, side) of the tracking crop around a face's landmarks (frame px)."""
    xy = landmarks[:, :2]
    width = float(np.ptp(xy[:, 0]))
    height = float(np.linalg.norm(xy[FOREHEAD] - xy[CHIN]))
    centre = (xy[FOREHEAD] + xy[CHIN]) / 2
    return float(centre[0]), float(centre[1]), max(width, 0.87 * height) / FACE_SHARE


class MediaPipeGraphs:
    """MediaPipe solution graphs held open together (each runs threads); close them, or use `with`."""

    def __init__(self) -> None:
        self._stack = ExitStack()

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        with _quiet_native_logs():
            self._stack.close()


class FaceTracker(MediaPipeGraphs):
    """Landmarks of one face through consecutive frames; close it (or use `with`)."""

    def __init__(self) -> None:
        super().__init__()
        mp = _mp()
        with _quiet_native_logs():
            self._mesh = self._stack.enter_context(mp.solutions.face_mesh.FaceMesh(
                static_image_mode=False, max_num_faces=1, refine_landmarks=True,
                min_detection_confidence=0.5, min_tracking_confidence=0.5))
            # The graph opens its models on its own threads; one empty frame waits for that, so
            # their log lines fall inside the silenced block.
            self._mesh.process(np.zeros((CROP_PX, CROP_PX, 3), np.uint8))
        self._box: tuple[float, float, float] | None = None
        self._since_detect = REDETECT_EVERY

    def process(self, frame: np.ndarray) -> np.ndarray | None:
        """(478, 3) landmarks of the face in this RGB frame (frame px), or None."""
        if self._box is None:
            self._since_detect += 1
            if self._since_detect < REDETECT_EVERY:
                return None
            self._since_detect = 0
            faces = find_faces(frame)
            if not faces:
                return None
            self._box = (faces[0].cx, faces[0].cy, faces[0].side / FACE_SHARE)
        cx, cy, side = self._box
        crop, to_frame = crop_square(frame, cx, cy, side, CROP_PX)
        with _quiet_native_logs():  # the graph's threads log from its first frames on
            res = self._mesh.process(np.ascontiguousarray(crop))
        if not res.multi_face_landmarks or len(res.multi_face_landmarks[0].landmark) != N_LANDMARKS:
            self._box = None
            self._since_detect = REDETECT_EVERY  # look again at once, then every few frames
            return None
        pts = np.array([(p.x, p.y, p.z) for p in res.multi_face_landmarks[0].landmark], np.float64) * CROP_PX
        scale = to_frame[0, 0]
        pts[:, :2] = pts[:, :2] * scale + to_frame[:, 2]
        pts[:, 2] *= scale
        self._follow(_box_of(pts))
        return pts

    def _follow(self, box: tuple[float, float, float]) -> None:
        """Move the crop to `box` only when the face has left its old place noticeably."""
        cx, cy, side = self._box  # type: ignore[misc]
        moved = np.hypot(box[0] - cx, box[1] - cy) > RECENTRE * side
        if moved or abs(box[2] - side) > RESIZE * side:
            self._box = box


def track_video(path: str | os.PathLike[str]) -> Iterator[TrackedFrame]:
    """Every frame of the video at `path` with its face's landmarks, streamed.

    The file is opened and checked at call time (a missing or broken file fails before iteration).
    """
    frames = read_video_frames(path)
    return _track(frames)


def _track(frames: Iterator[tuple[float, np.ndarray]]) -> Iterator[TrackedFrame]:
    with FaceTracker() as tracker:
        for index, (t, frame) in enumerate(frames):
            h, w = frame.shape[:2]
            yield TrackedFrame(index, t, tracker.process(frame), (w, h))

