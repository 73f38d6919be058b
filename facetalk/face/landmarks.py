"""Named groups of MediaPipe face-mesh landmark indices, and the canonical mesh they live on.

The indices are MediaPipe's (478 points with refined irises). Contours are ordered loops so they
can be drawn as polygons. Keeping every index list here means no stage repeats them inline.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import numpy as np

N_LANDMARKS = 478
N_MESH = 468

# Lips: ordered from the subject's right mouth corner (image left) to the left corner.
LIPS_OUTER_UPPER = (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291)
LIPS_OUTER_LOWER = (291, 375, 321, 405, 314, 17, 84, 181, 91, 146, 61)
LIPS_INNER_UPPER = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308)
LIPS_INNER_LOWER = (308, 324, 318, 402, 317, 14, 87, 178, 88, 95, 78)
LIPS_INNER = LIPS_INNER_UPPER + LIPS_INNER_LOWER[1:-1]
LIPS_OUTER = LIPS_OUTER_UPPER + LIPS_OUTER_LOWER[1:-1]
MOUTH_CORNERS = (61, 291)
# The two contours between the inner and outer lip lines, corner to corner (the lips' flesh).
LIPS_MID_UPPER = (62, 183, 42, 41, 38, 12, 268, 271, 272, 407, 292, 76, 184, 74, 73, 72, 11, 302, 303, 304, 408, 306)
LIPS_MID_LOWER = (77, 90, 180, 85, 16, 315, 404, 320, 307, 96, 89, 179, 86, 15, 316, 403, 319, 325)
UPPER_LIP_MID, LOWER_LIP_MID = 13, 14

# Eyes: "R" is the subject's right eye (image left). Upper lids run corner to corner.
EYE_R_UPPER = (33, 246, 161, 160, 159, 158, 157, 173, 133)
EYE_R_LOWER = (133, 155, 154, 153, 145, 144, 163, 7, 33)
EYE_L_UPPER = (362, 398, 384, 385, 386, 387, 388, 466, 263)
EYE_L_LOWER = (263, 249, 390, 373, 374, 380, 381, 382, 362)
EYE_R = EYE_R_UPPER + EYE_R_LOWER[1:-1]
EYE_L = EYE_L_UPPER + EYE_L_LOWER[1:-1]
IRIS_R_CENTER, IRIS_R_RING = 468, (469, 470, 471, 472)
IRIS_L_CENTER, IRIS_L_RING = 473, (474, 475, 476, 477)

BROW_R = (70, 63, 105, 66, 107, 46, 53, 52, 65, 55)
BROW_L = (300, 293, 334, 296, 336, 276, 283, 282, 295, 285)

# Face oval, clockwise from the top of the forehead (as seen in the image).
FACE_OVAL = (10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378,
             400, 377, 152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54,
             103, 67, 109)
CHIN, FOREHEAD, NOSE_TIP = 152, 10, 1


@dataclass(frozen=True)
class CanonicalMesh:
    """MediaPipe's canonical face model (centimetres, y up, z towards the camera)."""

    vertices: np.ndarray  # (468, 3) float32
    triangles: np.ndarray  # (898, 3) int32


@lru_cache(maxsize=1)
def canonical_mesh() -> CanonicalMesh:
    """Load the mesh extracted by tools/extract_canonical_mesh.py (Apache-2.0, MediaPipe)."""
    with resources.files("facetalk.face.data").joinpath("canonical_mesh.npz").open("rb") as f:
        data = np.load(f)
        return CanonicalMesh(data["vertices"].astype(np.float32), data["triangles"].astype(np.int32))

