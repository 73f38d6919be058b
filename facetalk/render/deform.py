"""Motion -> where every mesh vertex lands in the output frame, and how far it is.

Face vertices: neutral shape + expression offsets (canonical cm), then the head pose: the photo's
own rotation, turned further by the motion's yaw/pitch/roll about the upper neck, projected
orthographically. Ring vertices follow that head motion by their `follow` share, at the depth
their `relief` share gives them (face/ring.py), so hair moves with the head and the crop border
stays put. The face's rim is eased as the head turns (`rim_offsets`): the far side does not fold
over its own outline, the near side does not magnify the photo's blurred edge.

Head distance (`Motion.scale`, the magnification 1/distance) moves the whole person towards the
camera, as leaning in does: everything of the person grows about the face centre, and near parts
grow a little more than far ones (the perspective of a camera CAMERA_CM away). The background
plate does not move.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from facetalk.face import landmarks as L
from facetalk.face.pose import rotation_matrix
from facetalk.face.rig import FaceRig
from facetalk.motion.track import Motion

RING_DEPTH_PX = 10_000.0  # ring vertices lie behind the face, so the face wins where they overlap
CAMERA_CM = 60.0  # assumed distance of the photo's camera from the face (a portrait at arm's length)
RIM_FLATTEN = 0.4  # share of the way a receding rim vertex is brought forward to the face's median depth
RIM_REACH_CM = 3.5  # the rim: face vertices within this distance of the face oval (canonical cm)
RIM_RELAX = 1.0  # near side: share of the rim's depth relief (over the oval's) relaxed at the oval
RECEDE_CM = 1.5  # a rim vertex counts as fully on the far side once the turn has moved it this far back


@dataclass(frozen=True)
class MeshGeometry:
    """Per-rig constants for deformation, computed once."""

    src: np.ndarray  # (V, 2) float32 photo-crop px of every vertex
    rim_far: np.ndarray  # (478,) px a receding rim vertex comes forward (along the photo's line of sight)
    rim_near: np.ndarray  # (478,) px an approaching rim vertex goes back
    rest: np.ndarray  # (478, 3) the face in camera px relative to the pivot, as photographed
    recede_px: float  # RECEDE_CM in camera px
    ring_canonical: np.ndarray  # (R, 3) ring vertices lifted into the canonical frame
    pivot_camera: np.ndarray  # (3,) the rotation centre in crop px
    zoom_centre: np.ndarray  # (2,) crop px the person grows about when the distance changes
    centre_depth: float  # camera px depth of the face centre
    camera_px: float  # the photo's camera distance in crop px


def rim_offsets(rig: FaceRig, pivot_camera: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(far, near), each (478,) px: how far each face vertex moves along the photo's line of sight
    once it is fully on the far side (forward) or on the near side (back) of a turned head.

    The rim of a face seen from the front is nearly edge-on: MediaPipe puts the oval 8-10 cm
    behind the nose, and the depth falls steeply over its last centimetre. Turned in 3D, those
    grazing triangles fold shut on the far side (the cheek slides over its own outline: a hard
    edge of skin against hair or background, the outline and ear hidden, a squeezed far cheek)
    and swing open on the near side (the photo's few blurred pixels at the jaw and cheek edge,
    background mixed in, magnified 3-4 times into a smeared band). So, far side: the rim comes
    part of the way forward to the face's median depth, moving more like the face it borders,
    and the photo's own soft outline lands about where the turned head's outline would. Near
    side: the depth inside the rim is relaxed towards the oval's own, so the widening a turn
    brings is spread over the cheek instead of its edge; the oval itself, and so the head's
    outline and how turned it looks, stay where the true depth puts them. The photo itself (no
    motion) is unchanged.
    """
    cam = rig.pose.to_camera(rig.shape.astype(np.float64))
    relief = pivot_camera[2] - cam[:, 2]  # px in front of the pivot
    oval_idx = np.asarray(L.FACE_OVAL)
    oval = rig.shape[oval_idx, :2].astype(np.float64)
    d2 = ((rig.shape[:, None, :2] - oval[None]) ** 2).sum(-1)
    nearest = oval_idx[np.argmin(d2, axis=1)]
    share = np.clip(1.0 - np.sqrt(d2.min(1)) / RIM_REACH_CM, 0.0, 1.0)  # 1 on the oval, 0 at the reach
    far = RIM_FLATTEN * share**2 * np.maximum(0.0, np.median(relief) - relief)
    near = RIM_RELAX * share * np.maximum(0.0, relief - relief[nearest])
    return far.astype(np.float32), near.astype(np.float32)


def mesh_geometry(rig: FaceRig) -> MeshGeometry:
    pivot_camera = rig.pose.to_camera(rig.pivot[None, :])[0]
    face = rig.pose.to_camera(rig.shape)
    anchor_z = face[np.maximum(rig.ring_anchor, 0), 2]
    ring_z = pivot_camera[2] + rig.ring_relief * (anchor_z - pivot_camera[2])
    ring3 = np.column_stack([rig.ring_points, ring_z])
    src = np.concatenate([rig.landmarks[:, :2], rig.ring_points]).astype(np.float32)
    return MeshGeometry(src, *rim_offsets(rig, pivot_camera), (face - pivot_camera).astype(np.float32),
                        RECEDE_CM * rig.pose.scale, rig.pose.to_canonical(ring3), pivot_camera,
                        face[:, :2].mean(0), float(face[:, 2].mean()), CAMERA_CM * rig.pose.scale)


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
    if motion.yaw or motion.pitch or motion.roll:
        turn = rot @ rig.pose.rotation.T  # the motion's own rotation, in the camera frame
        recede = np.clip((geo.rest @ turn[2] - geo.rest[:, 2]) / geo.recede_px, -1.0, 1.0)
        back = np.where(recede > 0, -geo.rim_far * recede, -geo.rim_near * recede)
        face_cam += back[:, None] * turn[:, 2][None, :]
    ring_cam = scale * (geo.ring_canonical - rig.pivot) @ rot.T + offset
    src_ring = rig.ring_points
    ring_xy = src_ring + rig.ring_follow[:, None] * (ring_cam[:, :2] - src_ring)
    face_xy = zoom(face_cam[:, :2], face_cam[:, 2], motion.scale, geo)
    ring_xy = zoom(ring_xy, geo.centre_depth, motion.scale, geo)
    dst = np.concatenate([face_xy, ring_xy]).astype(np.float32)
    depth = np.concatenate([face_cam[:, 2], ring_cam[:, 2] + RING_DEPTH_PX]).astype(np.float32)
    return dst, depth, face_cam
