"""Motion -> where every mesh vertex lands in the output frame, and how far it is.

Face vertices: neutral shape + expression offsets (canonical cm), then the head pose: the photo's
own rotation, turned further by the motion's yaw/pitch/roll about the upper neck, scaled for the
head distance, projected orthographically. Ring vertices follow that head motion by their
`follow` share, so hair moves with the head and the crop border stays put.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from facetalk.face.pose import rotation_matrix
from facetalk.face.rig import FaceRig
from facetalk.motion.track import Motion

RING_DEPTH_PX = 10_000.0  # ring vertices lie behind the face, so the face wins where they overlap


@dataclass(frozen=True)
class MeshGeometry:
    """Per-rig constants for deformation, computed once."""

    src: np.ndarray  # (V, 2) float32 photo-crop px of every vertex
    ring_canonical: np.ndarray  # (R, 3) ring vertices lifted into the canonical frame
    pivot_camera: np.ndarray  # (3,) the rotation centre in crop px


def mesh_geometry(rig: FaceRig) -> MeshGeometry:
    pivot_camera = rig.pose.to_camera(rig.pivot[None, :])[0]
    ring3 = np.column_stack([rig.ring_points, np.full(len(rig.ring_points), pivot_camera[2])])
    src = np.concatenate([rig.landmarks[:, :2], rig.ring_points]).astype(np.float32)
    return MeshGeometry(src, rig.pose.to_canonical(ring3), pivot_camera)


def head_transform(rig: FaceRig, geo: MeshGeometry, motion: Motion):
    """(rotation, scale, offset) so that camera = scale * (X - pivot) @ rotation.T + offset."""
    rot = rotation_matrix(motion.yaw, motion.pitch, motion.roll) @ rig.pose.rotation
    scale = rig.pose.scale * motion.scale
    offset = geo.pivot_camera + np.array([motion.tx * rig.size, motion.ty * rig.size, 0.0])
    return rot, scale, offset


def deform(rig: FaceRig, geo: MeshGeometry, motion: Motion) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Output positions (V, 2), depths (V,) of all vertices, and the face in camera px (478, 3)."""
    rot, scale, offset = head_transform(rig, geo, motion)
    face = rig.shape + np.tensordot(motion.expressions(), rig.basis, axes=1)
    face_cam = scale * (face - rig.pivot) @ rot.T + offset
    ring_cam = scale * (geo.ring_canonical - rig.pivot) @ rot.T + offset
    src_ring = rig.ring_points
    ring_xy = src_ring + rig.ring_follow[:, None] * (ring_cam[:, :2] - src_ring)
    dst = np.concatenate([face_cam[:, :2], ring_xy]).astype(np.float32)
    depth = np.concatenate([face_cam[:, 2], ring_cam[:, 2] + RING_DEPTH_PX]).astype(np.float32)
    return dst, depth, face_cam
