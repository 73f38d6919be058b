"""render: FaceRig + Motion -> frames of the crop, and pasting the crop back into the photo."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from facetalk.face import landmarks as L
from facetalk.face.rig import FaceRig
from facetalk.motion.track import EXPRESSIONS, Motion
from facetalk.render.paste import FULL_FRAME_MAX_SIDE, Paster
from facetalk.render.renderer import Renderer


def expr(**weights: float) -> np.ndarray:
    e = np.zeros(len(EXPRESSIONS), np.float32)
    for name, w in weights.items():
        e[EXPRESSIONS.index(name)] = w
    return e


def diff(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.abs(a.astype(np.int16) - b.astype(np.int16))


@pytest.fixture(scope="module")
def renderer(rig: FaceRig) -> Renderer:
    return Renderer(rig)


@pytest.fixture(scope="module")
def neutral(renderer: Renderer) -> np.ndarray:
    return renderer.render(Motion()).copy()


def positions(renderer: Renderer, motion: Motion) -> np.ndarray:
    """Output px of every vertex (478 landmarks first) for `motion`."""
    _, _, dst = renderer.backward_map(motion)
    return np.array(dst, copy=True)


def box_around(points: np.ndarray, pad: int, size: int) -> tuple[slice, slice]:
    x0, y0 = np.floor(points.min(0)).astype(int) - pad
    x1, y1 = np.ceil(points.max(0)).astype(int) + pad
    return slice(max(y0, 0), min(y1, size)), slice(max(x0, 0), min(x1, size))


# --- the frame ---------------------------------------------------------------------------------

def test_frames_are_rgb_uint8_of_the_crop_size(renderer: Renderer, neutral: np.ndarray) -> None:
    assert neutral.dtype == np.uint8
    assert neutral.shape == (512, 512, 3)
    moved = renderer.render(Motion(yaw=5, expression=expr(jawOpen=0.5), gaze_yaw=10))
    assert moved.dtype == np.uint8 and moved.shape == (512, 512, 3)


def test_neutral_motion_reproduces_the_crop(rig: FaceRig, neutral: np.ndarray) -> None:
    d = diff(neutral, rig.image)
    assert d.mean() < 3.0
    assert np.percentile(d, 99) < 30


def test_rendering_is_deterministic_and_leaves_the_rig_alone(rig: FaceRig, renderer: Renderer) -> None:
    before = rig.image.copy(), rig.foreground.copy(), rig.plate.copy()
    m = Motion(yaw=7, pitch=-3, expression=expr(jawOpen=0.6, eyeBlinkL=0.5), gaze_yaw=8)
    a = renderer.render(m).copy()
    renderer.render(Motion(roll=9))
    b = renderer.render(m)
    assert np.array_equal(a, b)
    for old, new in zip(before, (rig.image, rig.foreground, rig.plate)):
        assert np.array_equal(old, new)


def test_identity_map_for_neutral_motion(rig: FaceRig, renderer: Renderer) -> None:
    map_x, map_y, dst = renderer.backward_map(Motion())
    assert np.allclose(dst[:478], rig.landmarks[:, :2], atol=0.05)
    ys, xs = np.mgrid[0:rig.size, 0:rig.size]
    assert np.abs(map_x - xs).mean() < 0.05 and np.abs(map_y - ys).mean() < 0.05


# --- expressions -------------------------------------------------------------------------------

def test_jaw_open_changes_the_mouth_and_nothing_far_away(rig: FaceRig, renderer: Renderer,
                                                         neutral: np.ndarray) -> None:
    opened = renderer.render(Motion(expression=expr(jawOpen=0.8)))
    lips = rig.landmarks[list(L.LIPS_INNER), :2]
    mouth = box_around(lips, 4, rig.size)
    assert diff(opened[mouth], neutral[mouth]).mean() > 20
    assert opened[mouth].mean() < neutral[mouth].mean() - 15  # the open mouth shows the dark interior
    corner = (slice(0, 40), slice(0, 40))  # background at the crop's corner
    assert np.array_equal(opened[corner], neutral[corner])
    eyes = box_around(rig.landmarks[list(L.EYE_R + L.EYE_L), :2], 2, rig.size)
    assert diff(opened[eyes], neutral[eyes]).mean() < 2.0


def test_jaw_open_moves_the_lower_lip_down(rig: FaceRig, renderer: Renderer) -> None:
    rest = positions(renderer, Motion())
    opened = positions(renderer, Motion(expression=expr(jawOpen=0.8)))
    assert opened[14, 1] - rest[14, 1] > 10  # px, down in the image
    assert abs(opened[13, 1] - rest[13, 1]) < 1.5
    assert opened[152, 1] > rest[152, 1] + 10  # chin


def test_full_blink_closes_both_eyes(renderer: Renderer) -> None:
    rest = positions(renderer, Motion())
    shut = positions(renderer, Motion(expression=expr(eyeBlinkL=1.0, eyeBlinkR=1.0)))
    for upper, lower in ((159, 145), (386, 374)):
        open_gap = np.linalg.norm(rest[upper] - rest[lower])
        assert open_gap > 5
        assert np.linalg.norm(shut[upper] - shut[lower]) < 0.25 * open_gap


def test_one_sided_blink(renderer: Renderer) -> None:
    rest = positions(renderer, Motion())
    wink = positions(renderer, Motion(expression=expr(eyeBlinkL=1.0)))
    assert np.linalg.norm(wink[386] - wink[374]) < 0.25 * np.linalg.norm(rest[386] - rest[374])
    assert np.allclose(wink[[159, 145]], rest[[159, 145]], atol=0.3)
    assert rest[386, 0] > rest[159, 0]  # the subject's left eye is on the image right


def test_blink_hides_the_iris(rig: FaceRig, renderer: Renderer, neutral: np.ndarray) -> None:
    shut = renderer.render(Motion(expression=expr(eyeBlinkL=1.0, eyeBlinkR=1.0)))
    for centre, radius in rig.irises:
        cx, cy = np.round(centre).astype(int)
        r = max(2, int(radius * 0.5))
        roi = (slice(cy - r, cy + r + 1), slice(cx - r, cx + r + 1))
        assert diff(shut[roi], neutral[roi]).mean() > 10


def test_smile_left_moves_the_image_right_corner(renderer: Renderer) -> None:
    rest = positions(renderer, Motion())
    smile = positions(renderer, Motion(expression=expr(mouthSmileL=1.0)))
    d291, d61 = smile[291] - rest[291], smile[61] - rest[61]
    assert d291[1] < -3 and d291[0] > 3  # up and out, on the image right
    assert np.linalg.norm(d61) < 0.3 * np.linalg.norm(d291)


# --- head pose ---------------------------------------------------------------------------------

@pytest.mark.parametrize("yaw", [10.0, -10.0])
def test_yaw_turns_the_nose(renderer: Renderer, yaw: float) -> None:
    rest = positions(renderer, Motion())
    turned = positions(renderer, Motion(yaw=yaw))
    dx = turned[L.NOSE_TIP, 0] - rest[L.NOSE_TIP, 0]
    assert np.sign(dx) == np.sign(yaw) and abs(dx) > 5
    assert abs(turned[L.NOSE_TIP, 1] - rest[L.NOSE_TIP, 1]) < 0.5 * abs(dx)


def test_yaw_moves_the_rendered_face(rig: FaceRig, renderer: Renderer, neutral: np.ndarray) -> None:
    turned = renderer.render(Motion(yaw=10.0))
    face = box_around(rig.landmarks[list(L.FACE_OVAL), :2], 0, rig.size)
    assert diff(turned[face], neutral[face]).mean() > 5
    assert np.array_equal(turned[:8, :8], neutral[:8, :8])  # the crop's corner is pinned


def test_pitch_lifts_the_chin(renderer: Renderer) -> None:
    rest = positions(renderer, Motion())
    up = positions(renderer, Motion(pitch=10.0))
    assert up[L.CHIN, 1] < rest[L.CHIN, 1] - 5
    assert up[L.NOSE_TIP, 1] < rest[L.NOSE_TIP, 1] - 5


def test_roll_tilts_clockwise(renderer: Renderer) -> None:
    rest = positions(renderer, Motion())
    tilted = positions(renderer, Motion(roll=10.0))
    assert tilted[33, 1] < rest[33, 1] - 3  # image-left eye corner goes up
    assert tilted[263, 1] > rest[263, 1] + 3  # image-right eye corner goes down


def test_translation_and_scale(rig: FaceRig, renderer: Renderer) -> None:
    rest = positions(renderer, Motion())
    shifted = positions(renderer, Motion(tx=0.05, ty=-0.02))
    assert np.allclose(shifted[:478] - rest[:478], [0.05 * rig.size, -0.02 * rig.size], atol=0.05)
    bigger = positions(renderer, Motion(scale=1.1))
    width = lambda p: np.linalg.norm(p[454] - p[234])  # noqa: E731
    assert width(bigger) == pytest.approx(1.1 * width(rest), rel=0.01)


# --- eyes --------------------------------------------------------------------------------------

def _dark_centroid_x(gray: np.ndarray, eye_box: tuple[slice, slice]) -> float:
    roi = gray[eye_box]
    ys, xs = np.nonzero(roi <= np.percentile(roi, 15))
    return float(xs.mean() + eye_box[1].start)


@pytest.mark.parametrize("gaze", [20.0, -20.0])
def test_gaze_moves_the_irises(rig: FaceRig, renderer: Renderer, neutral: np.ndarray, gaze: float) -> None:
    looking = renderer.render(Motion(gaze_yaw=gaze))
    g0 = neutral.astype(np.float32).mean(2)
    g1 = looking.astype(np.float32).mean(2)
    for eye in (L.EYE_R, L.EYE_L):
        eye_box = box_around(rig.landmarks[list(eye), :2], 0, rig.size)
        shift = _dark_centroid_x(g1, eye_box) - _dark_centroid_x(g0, eye_box)
        assert np.sign(shift) == np.sign(gaze) and abs(shift) > 2, f"iris moved {shift:.1f} px"
    # only the eyeballs change: everything outside the eye openings stays as it was
    outside = np.ones(looking.shape[:2], bool)
    for eye in (L.EYE_R, L.EYE_L):
        outside[box_around(rig.landmarks[list(eye), :2], 4, rig.size)] = False
    assert np.array_equal(looking[outside], neutral[outside])


# --- pasting back into the photo ---------------------------------------------------------------

def test_paste_size_is_the_photo_size(rig: FaceRig, portrait: np.ndarray) -> None:
    paster = Paster(portrait, rig.crop_to_photo, rig.size)
    out = paster.paste(rig.image)
    h, w = portrait.shape[:2]
    assert paster.size == (w // 2 * 2, h // 2 * 2)
    assert out.shape == (paster.size[1], paster.size[0], 3) and out.dtype == np.uint8


def test_paste_of_the_unanimated_crop_gives_back_the_photo(rig: FaceRig, portrait: np.ndarray) -> None:
    paster = Paster(portrait, rig.crop_to_photo, rig.size)
    out = paster.paste(rig.image)
    x0, y0, x1, y1 = paster.box
    assert 0 <= x0 < x1 <= portrait.shape[1] and 0 <= y0 < y1 <= portrait.shape[0]
    inside = (slice(y0, y1), slice(x0, x1))
    assert diff(out[inside], portrait[inside]).mean() < 3.0
    outside = np.ones(portrait.shape[:2], bool)
    outside[inside] = False
    assert np.array_equal(out[outside], portrait[outside])


def test_paste_of_an_animated_frame_changes_only_the_box(rig: FaceRig, renderer: Renderer,
                                                        portrait: np.ndarray) -> None:
    paster = Paster(portrait, rig.crop_to_photo, rig.size)
    frame = renderer.render(Motion(yaw=8, expression=expr(jawOpen=0.8)))
    out = paster.paste(frame)
    x0, y0, x1, y1 = paster.box
    changed = diff(out, portrait).max(2) > 0
    assert changed[y0:y1, x0:x1].sum() > 500
    changed[y0:y1, x0:x1] = False
    assert not changed.any()


@pytest.mark.parametrize("hw, expected", [((3000, 4000), (1920, 1440)), ((4001, 2999), (1438, 1920)),
                                          ((301, 511), (510, 300)), ((1080, 1920), (1920, 1080))])
def test_paste_output_is_even_and_capped(hw: tuple[int, int], expected: tuple[int, int]) -> None:
    h, w = hw
    photo = np.zeros((h, w, 3), np.uint8)
    photo[..., 0] = (np.arange(w) % 256).astype(np.uint8)[None, :]
    side = min(h, w) / 2
    crop_to_photo = np.array([[side / 256, 0, w / 4], [0, side / 256, h / 4]])
    paster = Paster(photo, crop_to_photo, 256)
    out_w, out_h = paster.size
    assert (out_w, out_h) == expected
    assert out_w % 2 == 0 and out_h % 2 == 0 and max(out_w, out_h) <= FULL_FRAME_MAX_SIDE
    out = paster.paste(np.full((256, 256, 3), 200, np.uint8))
    assert out.shape == (out_h, out_w, 3)
    # the pasted square lands where crop_to_photo says, scaled to the output
    cx, cy = (w / 4 + side / 2) * out_w / w, (h / 4 + side / 2) * out_h / h
    assert np.all(out[int(cy), int(cx)] == 200)
    assert out[2, 2, 2] == 0  # outside the box: the photo


def test_paste_of_a_crop_reaching_past_the_photo() -> None:
    """A crop larger than the photo (tight photos) is pasted without errors or feathering artefacts."""
    photo = np.full((100, 80, 3), 50, np.uint8)
    crop_to_photo = np.array([[0.5, 0, -20], [0, 0.5, -10]])  # 256 crop px = 128 photo px, off both edges
    paster = Paster(photo, crop_to_photo, 256)
    assert paster.box == (0, 0, 80, 100)
    out = paster.paste(np.full((256, 256, 3), 50, np.uint8))
    assert np.array_equal(out, photo)
    out = paster.paste(np.full((256, 256, 3), 250, np.uint8))
    assert out[50, 40].min() == 250  # the middle of the photo is fully the crop


@pytest.mark.parametrize("motion", [
    Motion(yaw=60), Motion(pitch=-40, roll=45), Motion(yaw=-80, expression=np.ones(len(EXPRESSIONS), np.float32)),
    Motion(scale=0.2), Motion(scale=3.0), Motion(tx=2.0), Motion(gaze_yaw=90, gaze_pitch=-90),
    Motion(expression=expr(mouthClose=-1.0, jawOpen=1.0)),
], ids=["yaw60", "pitch-roll", "yaw-80-all", "far", "near", "off-frame", "gaze-extreme", "lips-parted"])
def test_extreme_motion_still_renders(renderer: Renderer, motion: Motion) -> None:
    frame = renderer.render(motion)
    assert frame.shape == (512, 512, 3) and frame.dtype == np.uint8
    assert 20 < frame.mean() < 235  # a picture, not a blank


def test_gaze_pitch_moves_the_irises_up(rig: FaceRig, renderer: Renderer, neutral: np.ndarray) -> None:
    up = renderer.render(Motion(gaze_pitch=25.0)).astype(np.float32).mean(2)
    g0 = neutral.astype(np.float32).mean(2)
    for eye in (L.EYE_R, L.EYE_L):
        box = box_around(rig.landmarks[list(eye), :2], 0, rig.size)

        def centroid_y(gray: np.ndarray) -> float:
            roi = gray[box]
            ys, _ = np.nonzero(roi <= np.percentile(roi, 15))
            return float(ys.mean())

        assert centroid_y(up) < centroid_y(g0) - 0.5


# --- the limits of the motion range (issue 14) -------------------------------------------------

INNER_LIP_PAIRS = ((82, 87), (13, 14), (312, 317))


def lip_gap(p: np.ndarray) -> float:
    """Inner-lip gap over face height (nose bridge to chin), as the evaluation measures a mouth."""
    gap = np.mean([np.linalg.norm(p[a] - p[b]) for a, b in INNER_LIP_PAIRS])
    return float(gap / np.linalg.norm(p[168] - p[152]))


def test_jaw_open_reaches_a_wide_ah(renderer: Renderer) -> None:
    """jawOpen = 1 parts shut lips as far as real speakers' widest vowels (JAW_OPEN_GAP, measured
    on the evaluation's real clips), and jawOpen = 0.5 about half as far: an ordinary vowel."""
    from facetalk.face.basis import JAW_OPEN_GAP

    shut = dict(mouthClose=1.0)  # the portrait's own mouth is open: close it first
    g0 = lip_gap(positions(renderer, Motion(expression=expr(**shut))))
    g5 = lip_gap(positions(renderer, Motion(expression=expr(jawOpen=0.5, **shut))))
    g1 = lip_gap(positions(renderer, Motion(expression=expr(jawOpen=1.0, **shut))))
    assert g0 < 0.02
    assert g1 - g0 > 0.9 * JAW_OPEN_GAP
    assert 0.35 < (g5 - g0) / (g1 - g0) < 0.65


def _map_and_person(renderer: Renderer, motion: Motion) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    map_x, map_y, _ = renderer.backward_map(motion)
    person = cv2.remap(renderer.rig.alpha, map_x, map_y, cv2.INTER_LINEAR) > 0.5
    return map_x, map_y, person


TURNS = [Motion(yaw=-15.0), Motion(yaw=15.0), Motion(pitch=-10.0), Motion(pitch=10.0)]
TURN_IDS = ["yaw-15", "yaw+15", "pitch-10", "pitch+10"]


@pytest.mark.parametrize("motion", TURNS, ids=TURN_IDS)
def test_turned_head_has_no_cut_edges(renderer: Renderer, motion: Motion) -> None:
    """At the edges of real speakers' head motion, no part of the person is cut: neighbouring
    output pixels come from neighbouring photo pixels (a jump in the backward map is a seam, e.g.
    the far cheek folding over its own outline, or hair sliding past a band that stays put)."""
    map_x, map_y, person = _map_and_person(renderer, motion)
    jump = np.maximum(np.hypot(np.diff(map_x, axis=1)[:-1], np.diff(map_y, axis=1)[:-1]),
                      np.hypot(np.diff(map_x, axis=0)[:, :-1], np.diff(map_y, axis=0)[:, :-1]))
    assert ((jump > 6.0) & person[:-1, :-1]).sum() < 250


@pytest.mark.parametrize("motion", TURNS[:2], ids=TURN_IDS[:2])
def test_turned_head_is_not_smeared(renderer: Renderer, motion: Motion) -> None:
    """A turned head shows what the photo saw edge-on only a little wider: few pixels of the
    person are magnified more than twice (a smeared band along the near cheek, hair or ear)."""
    map_x, map_y, person = _map_and_person(renderer, motion)
    det = np.abs(np.gradient(map_x, axis=1) * np.gradient(map_y, axis=0)
                 - np.gradient(map_x, axis=0) * np.gradient(map_y, axis=1))
    assert ((det < 0.5) & person).sum() < 1000


@pytest.mark.parametrize("yaw", [15.0, -15.0])
def test_far_cheek_keeps_its_projected_width(rig: FaceRig, renderer: Renderer, yaw: float) -> None:
    """The far cheek, from the eye's outer corner to the face's outline, is as wide as the turned
    face's own projection makes it: not squeezed under a fold, not left unturned."""
    from facetalk.face.pose import rotation_matrix

    dst = positions(renderer, Motion(yaw=yaw))
    eye, edge = (263, 454) if yaw > 0 else (33, 234)  # yaw > 0 turns the subject's left side away
    rendered = abs(dst[edge, 0] - dst[eye, 0])
    cam = rig.pose.scale * rig.shape @ (rotation_matrix(yaw, 0, 0) @ rig.pose.rotation).T
    band = np.abs(rig.shape[:468, 1] - rig.shape[edge, 1]) < 1.0
    outline = cam[:468][band, 0].max() if yaw > 0 else cam[:468][band, 0].min()
    expected = abs(outline - cam[eye, 0])
    assert 0.8 < rendered / expected < 1.3
