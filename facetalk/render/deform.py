"""Motion -> where every mesh vertex lands in the output frame, and how far it is.

Face vertices: neutral shape + expression offsets (canonical cm), then the head pose: the photo's
own rotation, turned further by the motion's yaw/pitch/roll about the upper neck, projected
orthographically. Ring vertices follow that head motion by their `follow` share, so hair moves
with the head and the crop border stays put.

Head distance (`Motion.scale`, the magnification 1/distance) moves the whole person towards the
camera, as leaning in does: everything of the person grows about the face centre, and near parts
grow a little more than far ones (the perspective of a camera CAMERA_CM away). The background
plate does not move.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from facetalk.face.pose import rotation_matrix
from facetalk.face.rig import FaceRig
from facetalk.motion.track import Motion

RING_DEPTH_PX = 10_000.0  # ring vertices lie behind the face, so the face wins where they overlap
CAMERA_CM = 60.0  # assumed distance of the photo's camera from the face (a portrait at arm's length)


@dataclass(frozen=True)
class MeshGeometry:
    """Per-rig constants for deformation, computed once."""

    src: np.ndarray  # (V, 2) float32 photo-crop px of every vertex
    ring_canonical: np.ndarray  # (R, 3) ring vertices lifted into the canonical frame
    pivot_camera: np.ndarray  # (3,) the rotation centre in crop px
    zoom_centre: np.ndarray  # (2,) crop px the person grows about when the distance changes
    centre_depth: float  # camera px depth of the face centre
    camera_px: float  # the photo's camera distance in crop px


def mesh_geometry(rig: FaceRig) -> MeshGeometry:
    pivot_camera = rig.pose.to_camera(rig.pivot[None, :])[0]
    ring3 = np.column_stack([rig.ring_points, np.full(len(rig.ring_points), pivot_camera[2])])
    src = np.concatenate([rig.landmarks[:, :2], rig.ring_points]).astype(np.float32)
    face = rig.pose.to_camera(rig.shape)
    return MeshGeometry(src, rig.pose.to_canonical(ring3), pivot_camera, face[:, :2].mean(0),
                        float(face[:, 2].mean()), CAMERA_CM * rig.pose.scale)


def head_transform(rig: FaceRig, geo: MeshGeometry, motion: Motion):
    """(rotation, scale, offset) so that camera = scale * (X - pivot) @ rotation.T + offset."""
    rot = rotation_matrix(motion.yaw, motion.pitch, motion.roll) @ rig.pose.rotation
    offset = geo.pivot_camera + np.array([motion.tx * rig.size, motion.ty * rig.size, 0.0])
    return rot, rig.pose.scale, offset


def zoom(xy: np.ndarray, depth: np.ndarray | float, k: float, geo: MeshGeometry) -> np.ndarray:
    """Image positions after the camera comes k times closer (k = Motion.scale): a point dz px
    behind the face centre grows by k (Z + dz) / (Z + k dz) instead of exactly k."""
    if k == 1.0:
        return xy
    dz = np.asarray(depth, np.float64) - geo.centre_depth
    m = k * (geo.camera_px + dz) / (geo.camera_px + k * dz)
    return geo.zoom_centre + (xy - geo.zoom_centre) * np.reshape(m, (-1, 1))


def project(rig: FaceRig, geo: MeshGeometry, motion: Motion, points: np.ndarray) -> np.ndarray:
    """Output px (N, 2) of points given in the canonical frame (cm), moving rigidly with the head."""
    rot, scale, offset = head_transform(rig, geo, motion)
    cam = scale * (points - rig.pivot) @ rot.T + offset
    return zoom(cam[:, :2], cam[:, 2], motion.scale, geo)


def deform(rig: FaceRig, geo: MeshGeometry, motion: Motion) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Output positions (V, 2), depths (V,) of all vertices, and the face in camera px (478, 3)."""
    rot, scale, offset = head_transform(rig, geo, motion)
    face = rig.shape + np.tensordot(motion.expressions(), rig.basis, axes=1)
    face_cam = scale * (face - rig.pivot) @ rot.T + offset
    ring_cam = scale * (geo.ring_canonical - rig.pivot) @ rot.T + offset
    src_ring = rig.ring_points
    ring_xy = src_ring + rig.ring_follow[:, None] * (ring_cam[:, :2] - src_ring)
    face_xy = zoom(face_cam[:, :2], face_cam[:, 2], motion.scale, geo)
    ring_xy = zoom(ring_xy, geo.centre_depth, motion.scale, geo)
    dst = np.concatenate([face_xy, ring_xy]).astype(np.float32)
    depth = np.concatenate([face_cam[:, 2], ring_cam[:, 2] + RING_DEPTH_PX]).astype(np.float32)
    return dst, depth, face_cam
