"""face: photo -> FaceRig (crop, landmarks, pose, expression basis), on the built-in portrait and
variants of it made here (grey, rotated, tiny, huge, two faces, no face)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from facetalk.errors import FacetalkError
from facetalk.face.pose import FLIP, HeadPose, fit_pose, rotation_matrix
from facetalk.face.detect import crop_square
from facetalk.face.rig import FACE_SHARE as CROP_FACE_SHARE, FIT_SHRINK, FaceRig, _keep_inside, build_rig

FACE_SHARE = (0.35, 0.65)


def face_share(rig: FaceRig) -> float:
    lm = rig.landmarks
    return float(np.linalg.norm(lm[234, :2] - lm[454, :2]) / rig.size)


def crop_centre_in_photo(rig: FaceRig) -> np.ndarray:
    return rig.crop_to_photo @ np.array([rig.size / 2, rig.size / 2, 1.0])


def crop_side_in_photo(rig: FaceRig) -> float:
    return float(rig.crop_to_photo[0, 0] * rig.size)


def basis_offset(rig: FaceRig, name: str, weight: float = 1.0) -> np.ndarray:
    """The canonical face (cm) with one expression applied."""
    return rig.shape + weight * rig.basis[rig.expressions.index(name)]


# --- the portrait's rig ------------------------------------------------------------------------

def test_rig_crop(rig: FaceRig, portrait: np.ndarray) -> None:
    assert rig.size == 512
    assert rig.image.shape == (512, 512, 3) and rig.image.dtype == np.uint8
    assert rig.photo_shape == portrait.shape[:2]
    assert FACE_SHARE[0] < face_share(rig) < FACE_SHARE[1]
    assert rig.n_faces == 1 and rig.face_index == 0
    assert not rig.grayscale


def test_crop_transform_maps_the_crop_onto_the_photo(rig: FaceRig, portrait: np.ndarray) -> None:
    """Sampling the photo through crop_to_photo gives back the crop."""
    resampled = cv2.warpAffine(np.ascontiguousarray(portrait), rig.crop_to_photo, (rig.size, rig.size),
                               flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE)
    assert np.abs(resampled.astype(int) - rig.image.astype(int)).mean() < 3.0


def test_landmarks_lie_on_the_face(rig: FaceRig) -> None:
    lm = rig.landmarks
    assert lm.shape == (478, 3)
    assert np.all((lm[:, :2] > 0) & (lm[:, :2] < rig.size))
    # anatomy in image coordinates (y down): forehead above nose above chin; subject's right on the left
    assert lm[10, 1] < lm[1, 1] < lm[152, 1]
    assert lm[33, 0] < lm[1, 0] < lm[263, 0]
    assert lm[13, 1] < lm[14, 1]  # upper lip above lower lip
    assert lm[159, 1] < lm[145, 1] and lm[386, 1] < lm[374, 1]  # upper lids above lower lids


def test_pose_fit_reproduces_the_landmarks(rig: FaceRig) -> None:
    back = rig.pose.to_camera(rig.shape)
    assert np.allclose(back, rig.landmarks, atol=0.05)
    assert np.allclose(rig.pose.to_canonical(rig.landmarks), rig.shape, atol=0.01)
    # the canonical frame is in cm: a face is about 12-16 cm wide between the cheek points
    width_cm = float(np.linalg.norm(rig.shape[234] - rig.shape[454]))
    assert 10.0 < width_cm < 18.0
    # near-frontal portrait
    yaw, pitch, roll = rig.pose.angles()
    assert abs(yaw) < 15 and abs(roll) < 15 and abs(pitch) < 20


def test_canonical_frame_axes(rig: FaceRig) -> None:
    """Canonical frame: x towards the subject's left, y up, z towards the camera."""
    s = rig.shape
    assert s[263, 0] > s[33, 0]  # left eye outer corner at +x
    assert s[10, 1] > s[152, 1]  # forehead above chin
    assert s[1, 2] > s[234, 2]  # nose tip in front of the cheeks


@pytest.mark.parametrize("angles", [(0, 0, 0), (10, 0, 0), (0, 15, 0), (0, 0, -20), (25, -10, 5), (-30, 20, 12)])
def test_rotation_matrix_round_trips_through_angles(angles: tuple[float, float, float]) -> None:
    r = rotation_matrix(*angles)
    assert np.allclose(r @ r.T, np.eye(3), atol=1e-12) and np.linalg.det(r) == pytest.approx(1.0)
    pose = HeadPose(rotation=r @ FLIP, scale=3.0, translation=np.zeros(3))
    assert np.allclose(pose.angles(), angles, atol=1e-6)


def test_rotation_matrix_sign_conventions() -> None:
    nose = np.array([0.0, 0.0, -1.0])  # camera frame: the nose points at the camera (-z)
    assert (rotation_matrix(20, 0, 0) @ nose)[0] > 0.2  # yaw + turns the nose to the image right
    assert (rotation_matrix(0, 20, 0) @ nose)[1] < -0.2  # pitch + lifts the nose (y up in the image)
    right = np.array([1.0, 0.0, 0.0])  # image right
    assert (rotation_matrix(0, 0, 20) @ right)[1] > 0.2  # roll +: clockwise in the image (y down)


def test_fit_pose_recovers_a_known_similarity(rig: FaceRig) -> None:
    rot = rotation_matrix(12.0, -8.0, 5.0) @ FLIP
    truth = HeadPose(rot, 21.5, np.array([250.0, 240.0, 30.0]))
    fitted = fit_pose(truth.to_camera(rig.shape))
    assert fitted.scale == pytest.approx(truth.scale, rel=1e-3)
    assert np.allclose(fitted.angles(), (12.0, -8.0, 5.0), atol=0.5)
    assert np.allclose(fitted.to_camera(rig.shape), truth.to_camera(rig.shape), atol=0.5)


# --- the expression basis ----------------------------------------------------------------------

def test_basis_shape(rig: FaceRig) -> None:
    assert rig.basis.shape == (len(rig.expressions), 478, 3)
    assert np.all(np.isfinite(rig.basis))
    for name in rig.expressions:
        assert np.abs(rig.basis[rig.expressions.index(name)]).max() > 0.05, f"{name} moves nothing"


def test_jaw_open_drops_the_lower_lip_only(rig: FaceRig) -> None:
    moved = basis_offset(rig, "jawOpen")
    drop = rig.shape[14, 1] - moved[14, 1]
    assert drop > 1.0  # cm: a wide-open jaw drops the lower lip about 2 cm
    assert np.linalg.norm(moved[13] - rig.shape[13]) < 0.05
    assert rig.shape[152, 1] - moved[152, 1] > 1.0  # the chin goes with the jaw
    assert np.linalg.norm(moved[10] - rig.shape[10]) < 1e-3  # the forehead stays


def test_blink_left_closes_the_left_eye_only(rig: FaceRig) -> None:
    moved = basis_offset(rig, "eyeBlinkL")
    gap = lambda pts, a, b: float(np.linalg.norm(pts[a] - pts[b]))  # noqa: E731
    assert rig.shape[386, 0] > 0  # 386/374 are the subject's left eye (+x)
    assert gap(moved, 386, 374) < 0.3 * gap(rig.shape, 386, 374)
    assert np.linalg.norm(moved[[159, 145]] - rig.shape[[159, 145]], axis=1).max() < 0.02
    right = basis_offset(rig, "eyeBlinkR")
    assert gap(right, 159, 145) < 0.3 * gap(rig.shape, 159, 145)
    assert np.linalg.norm(right[[386, 374]] - rig.shape[[386, 374]], axis=1).max() < 0.02


def test_smile_left_raises_the_left_corner(rig: FaceRig) -> None:
    moved = basis_offset(rig, "mouthSmileL")
    d291, d61 = moved[291] - rig.shape[291], moved[61] - rig.shape[61]
    assert d291[1] > 0.2  # up, cm
    assert d291[0] > 0.2  # outwards (the subject's left is +x)
    assert np.linalg.norm(d61) < 0.25 * np.linalg.norm(d291)
    mirrored = basis_offset(rig, "mouthSmileR")
    assert (mirrored[61] - rig.shape[61])[1] > 0.2 and (mirrored[61] - rig.shape[61])[0] < -0.2


def test_brow_raise_lifts_the_brows(rig: FaceRig) -> None:
    moved = basis_offset(rig, "browInnerUp")
    assert moved[107, 1] - rig.shape[107, 1] > 0.2 and moved[336, 1] - rig.shape[336, 1] > 0.2
    assert np.linalg.norm(moved[152] - rig.shape[152]) < 0.01  # the chin stays


# --- photos that are not the portrait as shipped ----------------------------------------------

def test_no_face_in_a_blank_image() -> None:
    with pytest.raises(FacetalkError, match="no face") as err:
        build_rig(np.full((480, 640, 3), 128, np.uint8))
    assert "\n" not in str(err.value)


def test_no_face_in_a_gradient() -> None:
    grad = np.tile(np.linspace(0, 255, 640).astype(np.uint8)[None, :, None], (480, 1, 3))
    with pytest.raises(FacetalkError, match="no face"):
        build_rig(np.ascontiguousarray(grad))


def test_face_index_out_of_range(portrait: np.ndarray) -> None:
    with pytest.raises(FacetalkError, match=r"\b1 face") as err:
        build_rig(np.array(portrait), face=5)
    assert "5" in str(err.value)


@pytest.mark.parametrize("size", [63, 32, 100 + 1])
def test_bad_crop_size(portrait: np.ndarray, size: int) -> None:
    with pytest.raises(FacetalkError, match="crop size"):
        build_rig(np.array(portrait), size=size)


def test_smaller_crop(portrait: np.ndarray) -> None:
    rig = build_rig(np.array(portrait), size=256)
    assert rig.image.shape == (256, 256, 3)
    assert FACE_SHARE[0] < face_share(rig) < FACE_SHARE[1]


@pytest.fixture(scope="module")
def two_faces(portrait: np.ndarray) -> np.ndarray:
    """The portrait at full size on the left and at 320 px on the right of one grey canvas."""
    canvas = np.full((640, 1000, 3), 128, np.uint8)
    canvas[64:576, 0:512] = portrait
    canvas[160:480, 620:940] = cv2.resize(np.ascontiguousarray(portrait), (320, 320), interpolation=cv2.INTER_AREA)
    return canvas


def test_two_faces_default_is_the_larger(two_faces: np.ndarray) -> None:
    rig = build_rig(two_faces)
    assert rig.n_faces == 2 and rig.face_index == 0
    assert crop_centre_in_photo(rig)[0] < 512  # the left, full-size copy
    assert FACE_SHARE[0] < face_share(rig) < FACE_SHARE[1]


def test_two_faces_pick_the_smaller(two_faces: np.ndarray) -> None:
    big = build_rig(two_faces, face=0)
    small = build_rig(two_faces, face=1)
    assert small.n_faces == 2 and small.face_index == 1
    assert crop_centre_in_photo(small)[0] > 620
    assert crop_side_in_photo(small) == pytest.approx(crop_side_in_photo(big) * 320 / 512, rel=0.1)
    with pytest.raises(FacetalkError, match="2 face"):
        build_rig(two_faces, face=2)


def test_grayscale_photo(portrait: np.ndarray) -> None:
    gray = cv2.cvtColor(cv2.cvtColor(np.ascontiguousarray(portrait), cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
    rig = build_rig(gray)
    assert rig.grayscale
    assert FACE_SHARE[0] < face_share(rig) < FACE_SHARE[1]


@pytest.mark.parametrize("degrees", [20.0, -20.0])
def test_rotated_photo_shows_as_roll(rig: FaceRig, portrait: np.ndarray, degrees: float) -> None:
    """Turning the photo counter-clockwise by d degrees changes the head's roll by -d."""
    m = cv2.getRotationMatrix2D((portrait.shape[1] / 2, portrait.shape[0] / 2), degrees, 1.0)
    turned = cv2.warpAffine(np.ascontiguousarray(portrait), m, portrait.shape[1::-1], borderMode=cv2.BORDER_REPLICATE)
    rotated = build_rig(turned)
    assert rotated.pose.angles()[2] - rig.pose.angles()[2] == pytest.approx(-degrees, abs=5.0)
    assert FACE_SHARE[0] < face_share(rotated) < FACE_SHARE[1]


@pytest.mark.parametrize("side", [200, 4000])
def test_tiny_and_huge_photos(rig: FaceRig, portrait: np.ndarray, side: int) -> None:
    interp = cv2.INTER_AREA if side < portrait.shape[0] else cv2.INTER_CUBIC
    photo = cv2.resize(np.ascontiguousarray(portrait), (side, side), interpolation=interp)
    scaled = build_rig(photo)
    assert scaled.image.shape == (512, 512, 3)
    assert scaled.photo_shape == (side, side)
    assert FACE_SHARE[0] < face_share(scaled) < FACE_SHARE[1]
    # the same face is found at the same place, scaled with the photo
    f = side / portrait.shape[0]
    assert np.allclose(crop_centre_in_photo(scaled), crop_centre_in_photo(rig) * f, atol=0.03 * side)
    assert crop_side_in_photo(scaled) == pytest.approx(crop_side_in_photo(rig) * f, rel=0.08)


def test_face_near_the_photo_edge_keeps_the_crop_inside(portrait: np.ndarray) -> None:
    """Where the photo is big enough, the crop slides to stay inside it (the face goes off-centre)."""
    shifted = np.ascontiguousarray(portrait[:, 150:])  # the face is now close to the left edge
    rig = build_rig(shifted)
    x0, y0 = rig.crop_to_photo[:, 2]
    side = crop_side_in_photo(rig)
    assert x0 >= -1e-6 and y0 >= -1e-6
    assert x0 + side <= shifted.shape[1] + 1e-6 and y0 + side <= shifted.shape[0] + 1e-6
    assert rig.landmarks[1, 0] < 0.45 * rig.size  # nose left of centre
    assert FACE_SHARE[0] < face_share(rig) < FACE_SHARE[1]


def test_photo_narrower_than_the_crop(portrait: np.ndarray) -> None:
    """A photo cut tight around the face: the crop, shrunk as far as it may, still reaches past both
    sides, and the face stays centred."""
    tight = np.ascontiguousarray(portrait[40:200, 165:282])
    rig = build_rig(tight)
    x0, y0 = rig.crop_to_photo[:, 2]
    side = crop_side_in_photo(rig)
    assert x0 < 0 and x0 + side > tight.shape[1]
    assert rig.image.shape == (512, 512, 3)
    assert abs(rig.landmarks[1, 0] - rig.size / 2) < 0.08 * rig.size
    assert CROP_FACE_SHARE < face_share(rig) < CROP_FACE_SHARE / FIT_SHRINK + 0.02  # it fills more of a shrunk crop


def landmarks_in_photo(rig: FaceRig) -> np.ndarray:
    return rig.landmarks[:, :2] * rig.crop_to_photo[0, 0] + rig.crop_to_photo[:, 2]


def test_the_frame_past_the_photo_edge_is_not_a_mirror() -> None:
    """Past the photo's top, the crop carries the edge on (blurred), never a mirror of what lies
    just inside: a photo dark along its top 10 rows and bright below stays dark above."""
    photo = np.full((300, 300, 3), 230, np.uint8)
    photo[:10] = 20
    photo[:10, ::8] = 60  # streaks along the edge, for the blur to smooth
    crop, to_photo = crop_square(photo, 150, 150 - 60, 300, 300)
    assert to_photo[1, 2] < -55  # the crop's top 60 rows lie above the photo
    above = crop[:55].astype(float)
    assert above.max() < 80  # a mirror would show the bright rows 10.. as rows above -10
    assert np.abs(np.diff(above[:20, :, 0], axis=1)).max() < 6  # far out, the streaks are blurred away
    assert np.array_equal(crop[70:], photo[10:240])  # inside the photo: the photo itself


def test_a_crop_a_little_wider_than_the_photo_shrinks_onto_it() -> None:
    cx, cy, side = _keep_inside(400.0, 330.0, 743.0, (720, 720))  # img03's: 3 % wider than the photo
    assert (cx, cy, side) == (360.0, 360.0, 720.0)
    cx, cy, side = _keep_inside(300.0, 200.0, 1000.0, (720, 720))  # far wider: shrinks only so far ...
    assert side == pytest.approx(1000.0 * FIT_SHRINK)
    assert cx - side / 2 <= 0 and cx + side / 2 >= 720  # ... and covers the whole photo
    assert cy - side / 2 <= 0 and cy + side / 2 >= 720


def test_a_face_that_fills_the_photo_is_found(rig: FaceRig, portrait: np.ndarray) -> None:
    """Cut inside the cheeks and the hairline, the face is missed by the detectors as they are; it is
    found with the photo's edges carried outward, and the user is told how much is made up."""
    from facetalk.face.detect import DETECT_MAX_SIDE, _detect, _downscale
    from facetalk.pipeline import photo_notes

    lm = landmarks_in_photo(rig)
    x0, x1, y0, y1 = int(lm[234, 0]) + 10, int(lm[454, 0]) - 10, int(lm[10, 1]) + 10, int(lm[152, 1]) + 8
    tight = np.ascontiguousarray(portrait[y0:y1, x0:x1])
    assert not _detect(_downscale(tight, DETECT_MAX_SIDE)[0])
    found = build_rig(tight)
    assert abs(landmarks_in_photo(found)[1, 0] - landmarks_in_photo(rig)[1, 0] + x0) < 3  # the nose tip
    assert any("--full-frame" in note for note in photo_notes(found, full_frame=False))
    assert not photo_notes(found, full_frame=True) and not photo_notes(rig, full_frame=False)


def test_a_face_cut_off_at_the_chin_is_refused(rig: FaceRig, portrait: np.ndarray) -> None:
    lm = landmarks_in_photo(rig)
    cut = np.ascontiguousarray(portrait[int(lm[10, 1]) - 60:int(lm[152, 1]) - 25])
    with pytest.raises(FacetalkError, match="runs off the photo's edge .*chin"):
        build_rig(cut)


# --- real photos from the shared evaluation set (skipped where it is absent) -------------------

def _eval_images(shared: Path) -> list[Path]:
    return sorted(p for p in (shared / "images").glob("*") if p.suffix.lower() in (".jpg", ".png"))


def test_eval_portraits_give_rigs(shared_eval: Path) -> None:
    from facetalk.media.image import read_image

    images = [p for p in _eval_images(shared_eval) if "dog" not in p.name]
    if not images:
        pytest.skip("no evaluation images")
    for path in images:
        rig = build_rig(read_image(path))
        assert FACE_SHARE[0] < face_share(rig) < FACE_SHARE[1], path.name
        assert np.allclose(rig.pose.to_camera(rig.shape), rig.landmarks, atol=0.05), path.name


def test_eval_dog_has_no_human_face(shared_eval: Path) -> None:
    from facetalk.media.image import read_image

    dogs = [p for p in _eval_images(shared_eval) if "dog" in p.name]
    if not dogs:
        pytest.skip("no dog image in the evaluation set")
    with pytest.raises(FacetalkError, match="no face"):
        build_rig(read_image(dogs[0]))


# --- the range of motion (issue 14): jaw, ring, plate ---------------------------------------------

LOWER_LIP_COLUMNS = (  # the lower lip's four contours (inner, two between, outer), column by column
    (318, 319, 320, 321), (402, 403, 404, 405), (317, 316, 315, 314), (14, 15, 16, 17),
    (87, 86, 85, 84), (178, 179, 180, 181), (88, 89, 90, 91),
)


def test_the_lower_lip_rides_the_jaw_whole(rig: FaceRig) -> None:
    """jawOpen drops the lower lip's flesh as one piece: the contours between its inner and outer
    edges keep up with them (a lip whose middle lagged behind its edges would smear)."""
    jaw = rig.basis[rig.expressions.index("jawOpen")]
    for column in LOWER_LIP_COLUMNS:
        drops = -jaw[list(column), 1]
        assert drops.min() > 0.8 * drops.max(), (column, drops)


def test_jaw_open_stretches_the_cheek_gradually(rig: FaceRig) -> None:
    """Beside the mouth corners the cheek hands over from skull to jaw over a band, not along a
    crease: no two neighbouring mesh vertices there differ in drop by more than half the jaw's."""
    from facetalk.face import landmarks as L

    jaw = rig.basis[rig.expressions.index("jawOpen")]
    drop = -jaw[:, 1]
    tris = L.canonical_mesh().triangles
    edges = np.concatenate([tris[:, [0, 1]], tris[:, [1, 2]], tris[:, [2, 0]]])
    lips = set(L.LIPS_INNER + L.LIPS_OUTER + L.LIPS_MID_UPPER + L.LIPS_MID_LOWER)
    corner = rig.shape[list(L.MOUTH_CORNERS)]
    cx, cy, half = corner[:, 0].mean(), corner[:, 1].mean(), np.abs(corner[:, 0] - corner[:, 0].mean()).mean()
    beside = [i for i in range(468) if i not in lips and abs(rig.shape[i, 0] - cx) > half + 0.1
              and cy - 2.5 < rig.shape[i, 1] < cy + 1.0]
    mask = np.isin(edges, beside).all(1)
    steps = np.abs(drop[edges[mask, 0]] - drop[edges[mask, 1]])
    assert mask.sum() > 20 and steps.max() < 0.5 * drop[14]


def test_ring_follows_the_head_near_the_face_and_stays_still_at_the_border(rig: FaceRig) -> None:
    border = (np.isclose(rig.ring_points, 0) | np.isclose(rig.ring_points, rig.size - 1)).any(1)
    assert border.sum() >= 8 and np.all(rig.ring_follow[border] == 0)
    assert np.all(rig.ring_anchor[border] == -1)
    inner = ~border & (rig.ring_relief > 0.5)
    assert inner.sum() > 20  # vertices just beyond the face keep most of its depth: they turn with it
    assert np.all((rig.ring_follow >= 0) & (rig.ring_follow <= 1))
    assert np.all((rig.ring_relief >= 0) & (rig.ring_relief <= 1))


def test_ring_carries_the_head_outline() -> None:
    """Where the person mask has an outline beside the face, a ring vertex sits just beyond it,
    so the outline moves with the head instead of being stretched."""
    from facetalk.face import landmarks as L
    from facetalk.face.ring import OUTLINE_MARGIN, build_ring

    size = 256
    lm = np.zeros((478, 2))
    t = np.linspace(0, 2 * np.pi, len(L.FACE_OVAL), endpoint=False)
    lm[list(L.FACE_OVAL)] = np.column_stack([128 + 50 * np.sin(t), 120 - 60 * np.cos(t)])
    alpha = np.zeros((size, size), np.float32)
    cv2.ellipse(alpha, (128, 120), (65, 78), 0, 0, 360, 1.0, -1)  # the head: 15 px beyond the face
    ring = build_ring(lm, size, alpha)
    head = ring.anchor >= 0
    r = np.hypot((ring.points[head, 0] - 128) / 65, (ring.points[head, 1] - 120) / 78)
    just_beyond = (r > 1.0) & (r < 1.0 + 2 * OUTLINE_MARGIN)
    assert just_beyond.sum() >= 20


def test_plate_carries_the_background_texture_to_the_outline() -> None:
    """The background uncovered beside a turned head is textured like the background around it,
    not a blurred smear."""
    from facetalk.face.plates import background_plate

    rng = np.random.default_rng(0)
    size = 256
    crop = np.clip(120 + 40 * rng.standard_normal((size, size, 3)), 0, 255).astype(np.uint8)
    alpha = np.zeros((size, size), np.float32)
    cv2.circle(alpha, (128, 128), 70, 1.0, -1)
    plate = background_plate(crop, alpha)
    yy, xx = np.mgrid[0:size, 0:size]
    r = np.hypot(xx - 128, yy - 128)
    hi = lambda img: np.abs(cv2.Laplacian(img.astype(np.float32).mean(2), cv2.CV_32F))  # noqa: E731
    rim = (r > 62) & (r < 72)  # uncovered first when the head moves
    outside = (r > 95) & (r < 110)
    assert hi(plate)[rim].mean() > 0.4 * hi(plate)[outside].mean()
