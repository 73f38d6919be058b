"""What only MediaPipe can see: where the irises are (dlib's 68 points have none) and where the
person ends (selfie segmentation), for the gaze and background measures."""

from __future__ import annotations

import numpy as np

from facetalk.face.detect import _mp, _quiet_native_logs
from facetalk.face.track import MediaPipeGraphs

# (iris centre, eye corner, eye corner) for each eye, in MediaPipe's refined 478-point numbering.
_EYES = ((468, 33, 133), (473, 362, 263))
PERSON_THRESHOLD = 0.1  # selfie-segmentation probability above which a pixel may be the person


def iris_offset(points: np.ndarray) -> np.ndarray:
    """(horizontal, vertical) iris offset from the middle of the eye corners, in eye widths,
    averaged over both eyes. Measured along the eye's own axis, so head roll does not read as
    gaze."""
    out = []
    for iris, a, b in _EYES:
        pa, pb, pi = points[a, :2], points[b, :2], points[iris, :2]
        width = np.linalg.norm(pb - pa)
        u = (pb - pa) / max(width, 1e-9)
        n = np.array([-u[1], u[0]])
        d = pi - (pa + pb) / 2
        out.append((d @ u / width, d @ n / width))
    return np.mean(out, axis=0)


class MediaPipeProbe(MediaPipeGraphs):
    """A face mesh in tracking mode and a selfie segmenter for one clip; close it (or use `with`)."""

    def __init__(self) -> None:
        super().__init__()
        mp = _mp()
        with _quiet_native_logs():
            self._mesh = self._stack.enter_context(mp.solutions.face_mesh.FaceMesh(
                static_image_mode=False, max_num_faces=1, refine_landmarks=True, min_detection_confidence=0.3))
            self._seg = self._stack.enter_context(
                mp.solutions.selfie_segmentation.SelfieSegmentation(model_selection=0))

    def gaze(self, frame: np.ndarray) -> np.ndarray:
        """(2,) iris offset, NaN when no face is found."""
        h, w = frame.shape[:2]
        with _quiet_native_logs():  # the graph's threads log from its first frames on
            res = self._mesh.process(frame)
        if not res.multi_face_landmarks:
            return np.full(2, np.nan)
        pts = np.array([(p.x * w, p.y * h) for p in res.multi_face_landmarks[0].landmark], np.float64)
        return iris_offset(pts) if len(pts) >= 478 else np.full(2, np.nan)

    def person(self, frame: np.ndarray) -> np.ndarray:
        """Boolean (H, W): pixels that may belong to the person."""
        with _quiet_native_logs():
            return self._seg.process(frame).segmentation_mask > PERSON_THRESHOLD
