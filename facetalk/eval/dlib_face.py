"""dlib's face detector, 68-point landmarks and 128-d identity embedding: the evaluation's eyes.

A different model family from the generator's MediaPipe mesh, so a generated face cannot pass the
evaluation merely by pleasing the model that built it. The models come from the
`face_recognition_models` package; they are located without importing it, because its
`__init__` needs `pkg_resources` (setuptools < 81), which we do not want at run time.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from facetalk.errors import FacetalkError

DETECT_SIDE = 320  # px: HOG detection runs on a copy this size (6 ms, finds faces down to ~40 px)
SAME_PERSON = 0.6  # dlib's threshold on embedding distance
_MISSING = ("facetalk eval needs dlib and its models: pip install 'facetalk[eval]' "
            "(or run `make setup`, which installs them)")


def _models_dir() -> Path:
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or spec.origin is None:
        raise FacetalkError(_MISSING)
    return Path(spec.origin).parent / "models"


@dataclass
class DlibFace:
    """The three dlib models, loaded once; `track` remembers the last face between frames."""

    detector: object
    predictor: object
    encoder: object
    _last_box: tuple[float, float, float, float] | None = field(default=None, repr=False)

    @staticmethod
    def load() -> "DlibFace":
        try:
            import dlib
        except ImportError as exc:
            raise FacetalkError(_MISSING) from exc
        models = _models_dir()
        files = [models / "shape_predictor_68_face_landmarks.dat", models / "dlib_face_recognition_resnet_model_v1.dat"]
        for f in files:
            if not f.is_file():
                raise FacetalkError(f"dlib model file missing: {f}; reinstall face_recognition_models")
        return DlibFace(dlib.get_frontal_face_detector(), dlib.shape_predictor(str(files[0])),
                        dlib.face_recognition_model_v1(str(files[1])))

    def reset(self) -> None:
        self._last_box = None

    def detect(self, frame: np.ndarray) -> tuple[float, float, float, float] | None:
        """The face box (left, top, right, bottom) in frame pixels: the one nearest the last box,
        else the largest (dlib's HOG detector has false positives; the subject is the big one)."""
        h, w = frame.shape[:2]
        scale = DETECT_SIDE / max(h, w)
        small = np.ascontiguousarray(cv2.resize(frame, (max(1, round(w * scale)), max(1, round(h * scale))),
                                                interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR))
        rects = self.detector(small, 0) or self.detector(small, 1)
        if not rects:
            return None
        boxes = [(r.left() / scale, r.top() / scale, r.right() / scale, r.bottom() / scale) for r in rects]
        if self._last_box is not None:
            cx, cy = (self._last_box[0] + self._last_box[2]) / 2, (self._last_box[1] + self._last_box[3]) / 2
            return min(boxes, key=lambda b: np.hypot((b[0] + b[2]) / 2 - cx, (b[1] + b[3]) / 2 - cy))
        return max(boxes, key=lambda b: (b[2] - b[0]) * (b[3] - b[1]))

    def landmarks(self, frame: np.ndarray) -> tuple[np.ndarray, object] | None:
        """(68, 2) points and dlib's shape object for the face in `frame`, or None.

        When the detector misses a frame (motion blur, a turned head) the last box is reused,
        so a one-frame miss does not punch a hole in the series.
        """
        import dlib

        box = self.detect(frame) or self._last_box
        if box is None:
            return None
        self._last_box = box
        rect = dlib.rectangle(*(int(round(v)) for v in box))
        shape = self.predictor(frame, rect)
        pts = np.array([(p.x, p.y) for p in shape.parts()], np.float64)
        return pts, shape

    def embedding(self, frame: np.ndarray, shape: object) -> np.ndarray:
        """128-d identity vector; two photos of one person are usually under 0.6 apart."""
        return np.asarray(self.encoder.compute_face_descriptor(frame, shape), np.float64)
