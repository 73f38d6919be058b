"""Head yaw, pitch and roll from dlib's 68 points: a perspective-n-point fit of a rigid 3D template.

The template is the nose and eye corners of MediaPipe's canonical face model (centimetres, y up,
z towards the viewer), the points of a face that expression does not move. Real and generated
clips are measured with the same template, so its small mismatch to any one face cancels in the
comparison (standard deviations and frame-to-frame changes).
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

import cv2
import numpy as np

from facetalk.eval.signals import RIGID

# dlib index -> canonical-model vertex, for the points in RIGID.
_CANONICAL_OF_DLIB = {27: 168, 28: 6, 29: 195, 30: 4, 31: 98, 33: 2, 35: 327, 36: 33, 39: 133, 42: 362, 45: 263}
_OBJECT_TO_CAMERA = np.diag([1.0, -1.0, -1.0])  # y up, z to viewer -> OpenCV's y down, z forward


@lru_cache(maxsize=1)
def rigid_template() -> np.ndarray:
    """(len(RIGID), 3) template points in camera axes (x right, y down, z away from the viewer)."""
    with resources.files("facetalk.face.data").joinpath("canonical_mesh.npz").open("rb") as f:
        vertices = np.load(f)["vertices"]
    return vertices[[_CANONICAL_OF_DLIB[i] for i in RIGID]] @ _OBJECT_TO_CAMERA.T


def camera_matrix(width: int, height: int) -> np.ndarray:
    """A pinhole camera with a ~50° field of view across the longer side, centred."""
    f = float(max(width, height))
    return np.array([[f, 0, width / 2], [0, f, height / 2], [0, 0, 1]], np.float64)


def euler_degrees(rotation: np.ndarray) -> tuple[float, float, float]:
    """(yaw, pitch, roll) of R = Ry(yaw) Rx(pitch) Rz(roll), in camera axes."""
    yaw = np.arctan2(rotation[0, 2], rotation[2, 2])
    pitch = np.arcsin(np.clip(-rotation[1, 2], -1.0, 1.0))
    roll = np.arctan2(rotation[1, 0], rotation[1, 1])
    return tuple(float(np.degrees(a)) for a in (yaw, pitch, roll))  # type: ignore[return-value]


def head_angles(landmarks: np.ndarray, width: int, height: int) -> np.ndarray:
    """(T, 3) yaw, pitch, roll in degrees from (T, 68, 2) landmarks; NaN rows where no face.

    Each fit starts from the previous frame's, which keeps the solver in the same basin of a
    nearly planar point set.
    """
    template = rigid_template()
    cam = camera_matrix(width, height)
    out = np.full((len(landmarks), 3), np.nan)
    guess: tuple[np.ndarray, np.ndarray] | None = None
    for t, lm in enumerate(landmarks):
        pts = np.ascontiguousarray(lm[list(RIGID)], np.float64)
        if not np.isfinite(pts).all():
            continue
        if guess is None:
            ok, rvec, tvec = cv2.solvePnP(template, pts, cam, None, flags=cv2.SOLVEPNP_EPNP)
            if ok:
                ok, rvec, tvec = cv2.solvePnP(template, pts, cam, None, rvec, tvec, True, cv2.SOLVEPNP_ITERATIVE)
        else:
            ok, rvec, tvec = cv2.solvePnP(template, pts, cam, None, guess[0].copy(), guess[1].copy(), True,
                                          cv2.SOLVEPNP_ITERATIVE)
        if not ok:
            continue
        guess = (rvec, tvec)
        out[t] = euler_degrees(cv2.Rodrigues(rvec)[0])
    return out
