"""Head pose of a landmark set: a similarity fit to MediaPipe's canonical face (Umeyama).

Camera frame = image axes: x right, y down, z away from the camera (right-handed). The canonical
model is x right, y up, z towards the camera, so it is flipped by FLIP before fitting.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from facetalk.face.landmarks import N_MESH, canonical_mesh

FLIP = np.diag([1.0, -1.0, -1.0])


@dataclass(frozen=True)
class HeadPose:
    """camera = scale * rotation @ canonical + translation (canonical in cm, camera in px)."""

    rotation: np.ndarray  # (3, 3), includes FLIP
    scale: float
    translation: np.ndarray  # (3,)

    def to_camera(self, pts: np.ndarray) -> np.ndarray:
        return self.scale * pts @ self.rotation.T + self.translation

    def to_canonical(self, pts: np.ndarray) -> np.ndarray:
        return (pts - self.translation) @ self.rotation / self.scale

    def angles(self) -> tuple[float, float, float]:
        """(yaw, pitch, roll) in degrees of the head relative to facing the camera."""
        return rotation_angles(self.rotation @ FLIP)  # rotation in the camera frame, identity when frontal


def fit_pose(landmarks: np.ndarray, weights: np.ndarray | None = None) -> HeadPose:
    """Least-squares similarity from the canonical mesh to `landmarks[:468]` (pixels)."""
    src = canonical_mesh().vertices.astype(np.float64) @ FLIP.T
    dst = landmarks[:N_MESH].astype(np.float64)
    w = np.ones(len(src)) if weights is None else weights.astype(np.float64)
    w = w / w.sum()
    mu_s, mu_d = w @ src, w @ dst
    s0, d0 = src - mu_s, dst - mu_d
    cov = (d0 * w[:, None]).T @ s0
    u, sig, vt = np.linalg.svd(cov)
    d = np.ones(3)
    d[2] = np.sign(np.linalg.det(u @ vt))
    rot = u @ np.diag(d) @ vt
    var = (w * (s0**2).sum(1)).sum()
    scale = float((sig * d).sum() / var)
    trans = mu_d - scale * rot @ mu_s
    return HeadPose(rot @ FLIP, scale, trans)


def rotation_matrix(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """Camera-frame rotation for head angles in degrees.

    Positive yaw turns the nose to the image right (the subject's left), positive pitch lifts the
    chin, positive roll tilts the head clockwise as seen in the image.
    """
    y, p, r = np.radians([yaw, pitch, roll])
    ry = np.array([[np.cos(y), 0, -np.sin(y)], [0, 1, 0], [np.sin(y), 0, np.cos(y)]])
    rx = np.array([[1, 0, 0], [0, np.cos(p), np.sin(p)], [0, -np.sin(p), np.cos(p)]])
    rz = np.array([[np.cos(r), -np.sin(r), 0], [np.sin(r), np.cos(r), 0], [0, 0, 1]])
    return rz @ ry @ rx


def rotation_angles(r: np.ndarray) -> tuple[float, float, float]:
    """(yaw, pitch, roll) in degrees of a camera-frame rotation: the inverse of rotation_matrix."""
    yaw = np.degrees(np.arcsin(np.clip(r[2, 0], -1, 1)))
    pitch = np.degrees(np.arctan2(-r[2, 1], r[2, 2]))
    roll = np.degrees(np.arctan2(r[1, 0], r[0, 0]))
    return float(yaw), float(pitch), float(roll)
