"""The outer ring: mesh vertices beyond the face (hair, ears, neck) out to the crop border.

The face mesh stops at the face oval. Two rings of vertices around it carry the hair and neck
along with the head (fully near the face, fading outwards and towards the body), and fixed points
on the crop border keep the frame's edge still. Together they tile the whole crop, so every output
pixel has a place in the photo to come from.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from scipy.spatial import Delaunay

from facetalk.face.landmarks import FACE_OVAL

RING_SCALES = (1.22, 1.6)  # ring radii relative to the face oval, measured from its centre
BORDER_STEP = 64  # px between fixed points on the crop border


@dataclass(frozen=True)
class Ring:
    points: np.ndarray  # (R, 2) crop px of ring and border vertices
    follow: np.ndarray  # (R,) how much each follows the head (1 = rigidly, 0 = fixed)
    triangles: np.ndarray  # (K, 3) indices into [oval landmarks as 0..477] + [478 + ring index]


def _follow(directions: np.ndarray, near: float, far: float, neck: float) -> np.ndarray:
    """Follow weights that drop towards the neck (directions pointing down in the image)."""
    down = np.clip(directions[:, 1], 0.0, 1.0)  # 1 straight below the face centre
    return np.where(directions[:, 1] > 0, near - (near - neck) * down**1.5, near) * far


def build_ring(landmarks2d: np.ndarray, size: int) -> Ring:
    oval = landmarks2d[list(FACE_OVAL)].astype(np.float64)
    centre = oval.mean(0)
    rel = oval - centre
    directions = rel / np.linalg.norm(rel, axis=1, keepdims=True)
    pts, follow = [], []
    for scale, far, neck in ((RING_SCALES[0], 1.0, 0.55), (RING_SCALES[1], 0.75, 0.2)):
        ring = centre + rel * scale
        pts.append(ring)
        follow.append(_follow(directions, 1.0, far, neck))
    ring_pts = np.concatenate(pts)
    ring_follow = np.concatenate(follow)
    margin = 2.0
    inside = ((ring_pts > margin) & (ring_pts < size - 1 - margin)).all(1)
    ring_pts, ring_follow = ring_pts[inside], ring_follow[inside]
    n = int(np.ceil((size - 1) / BORDER_STEP))
    edge = np.linspace(0, size - 1, n + 1)
    border = np.unique(np.concatenate([
        np.stack([edge, np.zeros_like(edge)], 1), np.stack([edge, np.full_like(edge, size - 1)], 1),
        np.stack([np.zeros_like(edge), edge], 1), np.stack([np.full_like(edge, size - 1), edge], 1),
    ]), axis=0)
    points = np.concatenate([ring_pts, border])
    weights = np.concatenate([ring_follow, np.zeros(len(border))])
    all_pts = np.concatenate([oval, points])
    tri = Delaunay(all_pts).simplices
    poly = oval.astype(np.float32).reshape(-1, 1, 2)
    centroids = all_pts[tri].mean(1)
    outside = np.array([cv2.pointPolygonTest(poly, (float(x), float(y)), False) < 0 for x, y in centroids])
    tri = tri[outside]
    index = np.concatenate([np.asarray(FACE_OVAL), 478 + np.arange(len(points))])
    return Ring(points.astype(np.float32), weights.astype(np.float32), index[tri].astype(np.int32))
