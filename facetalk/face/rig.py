"""Photo -> FaceRig: everything about one portrait that the renderer needs, built once.

The working crop is square with the face about half its width (as in VASA-1's crops). Landmarks
are lifted to 3D and expressed in MediaPipe's canonical head frame, where the expression basis is
authored; an outer ring of vertices carries hair and neck; the person is un-mixed from a
background plate; the irises are lifted off an eye plate so the gaze can move them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from facetalk.errors import FacetalkError
from facetalk.face import landmarks as L
from facetalk.face.basis import EXPRESSIONS, build_basis
from facetalk.face.detect import FaceBox, crop_square, find_faces, mesh_landmarks
from facetalk.face.lids import lid_plate
from facetalk.face.plates import (background_plate, eye_plate_and_iris, iris_geometry,
                                  person_alpha, unmix_foreground)
from facetalk.face.pose import HeadPose, fit_pose
from facetalk.face.ring import build_ring

FACE_SHARE = 0.5  # face width as a share of the crop width
CUT_TOLERANCE = 0.05  # share of the face's height a moving part may lie past the photo's edge
FIT_SHRINK = 0.75  # a crop may shrink this far to stay on the photo (_keep_inside)
MAX_SIZE = 2048  # px: larger crops would not render in real time and need GBs of maps
PIVOT_CM = np.array([0.0, -2.0, -4.0])  # head rotation centre in the canonical frame (upper neck)


@dataclass(frozen=True)
class FaceRig:
    """One analysed portrait. Arrays are read-only by convention; crop px unless noted."""

    size: int
    image: np.ndarray  # (S, S, 3) uint8 RGB crop
    crop_to_photo: np.ndarray  # (2, 3) affine from crop px to photo px
    photo_shape: tuple[int, int]  # (H, W) of the original photo
    landmarks: np.ndarray  # (478, 3) crop px; z = depth (larger = farther), same px scale
    pose: HeadPose  # canonical cm -> crop px
    shape: np.ndarray  # (478, 3) the subject's face in the canonical frame (cm)
    basis: np.ndarray  # (E, 478, 3) expression offsets in cm, names in `expressions`
    expressions: tuple[str, ...]
    ring_points: np.ndarray  # (R, 2) crop px of outer-ring and border vertices
    ring_follow: np.ndarray  # (R,) 0..1 share of the head motion each ring vertex follows
    ring_anchor: np.ndarray  # (R,) the oval landmark each ring vertex lies beyond (-1: crop border)
    ring_relief: np.ndarray  # (R,) share of its anchor's depth in front of the pivot each ring vertex keeps
    triangles: np.ndarray  # (K, 3) int32 over vertices [478 landmarks] + [R ring vertices]
    alpha: np.ndarray  # (S, S) float32 person mask
    foreground: np.ndarray  # (S, S, 3) uint8 person colours un-mixed from the background
    plate: np.ndarray  # (S, S, 3) uint8 background without the person
    eye_plate: np.ndarray  # (S, S, 3) uint8 foreground with the irises removed
    iris_alpha: np.ndarray  # (S, S) float32 visible iris discs
    lid_plate: np.ndarray  # (S, S, 3) uint8 foreground with the eye openings and lashes skinned over
    lash_rgb: np.ndarray  # (3,) colour of the lash line drawn on a closed lid
    irises: tuple[tuple[np.ndarray, float], ...]  # (centre px, radius px), right then left eye
    mouth_gap_cm: float  # inner-lip gap of the photo (an open mouth shows its own interior)
    skin_rgb: np.ndarray  # (3,) mean skin colour, lights the mouth interior
    grayscale: bool  # the photo has no colour: the interior must not have any either
    face_index: int
    n_faces: int

    @property
    def pivot(self) -> np.ndarray:
        return PIVOT_CM


def _face_box_from_landmarks(pts: np.ndarray) -> tuple[float, float, float]:
    """Centre and side of the working crop for a face's landmarks (photo px)."""
    xy = pts[:, :2].astype(np.float64)
    width = np.linalg.norm(xy[454] - xy[234])
    height = np.linalg.norm(xy[10] - xy[152])
    face = max(width, 0.87 * height)
    centre = (xy[10] + xy[152]) / 2
    centre[1] -= 0.04 * height  # a little more room above for the hair
    return float(centre[0]), float(centre[1]), float(face / FACE_SHARE)


def _keep_inside(cx: float, cy: float, side: float, shape: tuple[int, ...]) -> tuple[float, float, float]:
    """Keep the crop on the photo: an off-centre or larger face beats a frame edge filled with
    made-up pixels. A crop up to 1/FIT_SHRINK of the photo's shorter side shrinks to it (a face
    that all but fills the photo: `img03`'s crop came out 3 % wider than the photo, 46 px of the
    frame above his hair made up; a selfie cut at the hairline had a blurred dome of forehead over
    half the frame's height, a third with the crop shrunk), the face then filling up to two thirds
    of the frame's width; then it slides inside the photo, or, where it is still wider, covers the
    photo's whole width (height) with the face as near its centre as that allows."""
    h, w = shape[:2]
    side = min(side, max(min(h, w), side * FIT_SHRINK))
    cx = float(np.clip(cx, *sorted((side / 2, w - side / 2))))
    cy = float(np.clip(cy, *sorted((side / 2, h - side / 2))))
    return cx, cy, side


def _cut_off(pts: np.ndarray, shape: tuple[int, ...]) -> list[str]:
    """The parts the animation moves (eyes, nose, mouth, chin) that lie outside the photo by more than
    CUT_TOLERANCE of the face's height: they would blink and talk in made-up pixels."""
    h, w = shape[:2]
    margin = CUT_TOLERANCE * float(np.linalg.norm(pts[L.FOREHEAD, :2] - pts[L.CHIN, :2]))
    parts = {"eyes": L.EYE_R + L.EYE_L, "nose": (L.NOSE_TIP,), "mouth": L.LIPS_OUTER, "chin": (L.CHIN,)}
    out = []
    for name, idx in parts.items():
        xy = pts[list(idx), :2]
        if (xy < -margin).any() or (xy[:, 0] > w + margin).any() or (xy[:, 1] > h + margin).any():
            out.append(name)
    return out


def _landmarks_in_photo(photo: np.ndarray, box: FaceBox) -> np.ndarray | None:
    crop, to_photo = crop_square(photo, box.cx, box.cy, box.side * 2.2, 384)
    found = mesh_landmarks(crop)
    if not found:
        return None
    pts = found[0].astype(np.float64)
    scale = to_photo[0, 0]
    pts[:, :2] = pts[:, :2] * scale + to_photo[:, 2]
    pts[:, 2] *= scale
    return pts


def _skin(image: np.ndarray, lm: np.ndarray) -> np.ndarray:
    """Mean colour of the cheeks and forehead."""
    idx = [50, 280, 101, 330, 151, 9, 108, 337]
    h, w = image.shape[:2]
    samples = []
    for i in idx:
        x, y = np.clip(np.round(lm[i, :2]).astype(int), [2, 2], [w - 3, h - 3])
        samples.append(image[y - 2:y + 3, x - 2:x + 3].reshape(-1, 3))
    return np.median(np.concatenate(samples), axis=0).astype(np.float32)


def build_rig(photo: np.ndarray, size: int = 512, face: int | None = None) -> FaceRig:
    """Analyse an RGB photo. `face` picks among several faces, largest first (0 = largest)."""
    if size < 64 or size > MAX_SIZE or size % 2:
        raise FacetalkError(f"crop size must be an even number of pixels within 64..{MAX_SIZE}, got {size}")
    boxes = find_faces(photo)
    if not boxes:
        raise FacetalkError("no face found in the photo; use a photo where a face is clearly visible, "
                            "frontal or up to a three-quarter view")
    index = 0 if face is None else face
    if not 0 <= index < len(boxes):
        raise FacetalkError(f"face {index} was asked for, but the photo has {len(boxes)} face(s); "
                            f"choose 0..{len(boxes) - 1} (0 = largest)")
    pts = _landmarks_in_photo(photo, boxes[index])
    if pts is None:
        raise FacetalkError("a face was detected but its features could not be located; use a sharper, "
                            "less occluded or more frontal photo")
    cut = _cut_off(pts, photo.shape[:2])
    if cut:
        raise FacetalkError(f"the face runs off the photo's edge (its {' and '.join(cut)} outside it); use a photo "
                            "that shows the whole face, brows to chin")
    cx, cy, side = _keep_inside(*_face_box_from_landmarks(pts), photo.shape[:2])
    image, crop_to_photo = crop_square(photo, cx, cy, side, size)
    found = mesh_landmarks(image)
    if found:
        lm = found[0].astype(np.float64)
    else:  # fall back to the first pass, moved into the crop
        s = crop_to_photo[0, 0]
        lm = pts.copy()
        lm[:, :2] = (lm[:, :2] - crop_to_photo[:, 2]) / s
        lm[:, 2] /= s
    pose = fit_pose(lm)
    shape = pose.to_canonical(lm)
    alpha = person_alpha(image, lm[:, :2])
    ring = build_ring(lm[:, :2], size, alpha)
    plate = background_plate(image, alpha)
    foreground = unmix_foreground(image, alpha, plate)
    eye_plate, iris_alpha = eye_plate_and_iris(foreground, lm[:, :2])
    lids, lash = lid_plate(foreground, lm[:, :2])
    tris = np.concatenate([L.canonical_mesh().triangles, ring.triangles]).astype(np.int32)
    sat = np.abs(image.astype(np.int16) - image.mean(2, keepdims=True)).mean()
    return FaceRig(
        size=size, image=image, crop_to_photo=crop_to_photo, photo_shape=photo.shape[:2],
        landmarks=lm.astype(np.float32), pose=pose, shape=shape.astype(np.float32),
        basis=build_basis(shape), expressions=EXPRESSIONS, ring_points=ring.points,
        ring_follow=ring.follow, ring_anchor=ring.anchor, ring_relief=ring.relief, triangles=tris, alpha=alpha, foreground=foreground, plate=plate,
        eye_plate=eye_plate, iris_alpha=iris_alpha, lid_plate=lids, lash_rgb=lash, irises=tuple(iris_geometry(lm[:, :2])),
        mouth_gap_cm=float(np.linalg.norm(shape[L.UPPER_LIP_MID] - shape[L.LOWER_LIP_MID])),
        skin_rgb=_skin(image, lm), grayscale=bool(sat < 2.0), face_index=index, n_faces=len(boxes),
    )
