"""Blinks: a rendered eyeBlink = 1 is a shut eye (skin lid, lash line, no eyeball), and the blink's
timing has the real speakers' phases as the evaluation measures them."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from facetalk.face import landmarks as L
from facetalk.face.rig import FaceRig
from facetalk.motion.eyes import CLOSE_S, CLOSED_LEVEL, HOLD_S, OPEN_S, REAL_PHASES_S, blink_shape
from facetalk.motion.track import EXPRESSIONS, Motion
from facetalk.render.renderer import Renderer

EYES = ((L.EYE_R, L.EYE_R_UPPER), (L.EYE_L, L.EYE_L_UPPER))


def blink(closure: float, yaw: float = 0.0) -> Motion:
    e = np.zeros(len(EXPRESSIONS), np.float32)
    e[EXPRESSIONS.index("eyeBlinkL")] = e[EXPRESSIONS.index("eyeBlinkR")] = closure
    return Motion(yaw=yaw, expression=e)


@pytest.fixture(scope="module")
def renderer(rig: FaceRig) -> Renderer:
    return Renderer(rig)


def luma(frame: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY).astype(np.float32)


def polygon_mask(shape: tuple[int, ...], points: np.ndarray) -> np.ndarray:
    m = np.zeros(shape[:2], np.uint8)
    cv2.fillPoly(m, [np.round(points).astype(np.int32)], 1)
    return m > 0


def sclera_share(frame: np.ndarray, opening: np.ndarray) -> float:
    """Share of the photo's eye opening that is bright and colourless (white of the eye)."""
    hsv = cv2.cvtColor(frame, cv2.COLOR_RGB2HSV)
    white = (hsv[..., 1] < 50) & (hsv[..., 2] > 120)
    return float(white[polygon_mask(frame.shape, opening)].mean())


def lid_above(upper: np.ndarray, lifted: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Mask between the shut lid's edge (lifted clear of its lashes) and the open lid's edge."""
    return polygon_mask(shape, np.concatenate([lifted, upper[::-1]]))


# --- the picture ------------------------------------------------------------------------------

@pytest.mark.parametrize("yaw", [0.0, -15.0, 15.0])
def test_shut_eye_shows_no_white_of_the_eye(rig: FaceRig, renderer: Renderer, yaw: float) -> None:
    open_ = renderer.render(blink(0.0, yaw)).copy()
    shut = renderer.render(blink(1.0, yaw))
    _, _, dst = renderer.backward_map(blink(0.0, yaw))
    for eye, _ in EYES:
        opening = dst[list(eye)]
        assert sclera_share(open_, opening) > 0.1  # the portrait's eyes show their whites
        assert sclera_share(shut, opening) < 0.05


def test_shut_eye_hides_the_iris_under_skin(rig: FaceRig, renderer: Renderer) -> None:
    """Where the iris was (above the shut lid's lash line) there is lid skin, as bright as the
    face's skin: no dark almond of an eye left open."""
    open_ = renderer.render(blink(0.0)).copy()
    shut = renderer.render(blink(1.0))
    _, _, rest = renderer.backward_map(blink(0.0))
    _, _, closed = renderer.backward_map(blink(1.0))
    skin = float(rig.skin_rgb @ np.array([0.299, 0.587, 0.114]))
    for (centre, radius), (eye, upper) in zip(rig.irises, EYES):
        width = float(np.ptp(rest[list(eye)][:, 0]))
        lid = lid_above(rest[list(upper)], closed[list(upper)] - (0, 0.12 * width), shut.shape)
        disc = np.hypot(*(np.mgrid[0:shut.shape[0], 0:shut.shape[1]][::-1] - centre[:, None, None])) < radius
        region = lid & disc
        assert region.sum() > 20
        assert luma(open_)[region].mean() < 0.75 * skin  # the iris, open
        assert luma(shut)[region].mean() > 0.85 * skin  # skin, shut
        assert luma(shut)[lid].mean() > 0.85 * skin  # the whole lid, not only over the iris


def test_shut_eye_has_a_dark_lash_line(rig: FaceRig, renderer: Renderer) -> None:
    shut = luma(renderer.render(blink(1.0)))
    _, _, closed = renderer.backward_map(blink(1.0))
    for eye, upper in EYES:
        edge = closed[list(upper)][2:-2]  # mid-lid, away from the corners
        width = float(np.ptp(closed[list(eye)][:, 0]))
        line = np.zeros(shut.shape, np.uint8)
        cv2.polylines(line, [np.round(edge).astype(np.int32)], False, 1, 1)
        above = np.zeros(shut.shape, np.uint8)
        cv2.polylines(above, [np.round(edge - (0, 0.2 * width)).astype(np.int32)], False, 1, 1)
        assert shut[line > 0].mean() < 0.6 * shut[above > 0].mean()


def test_shut_lash_line_is_thick(renderer: Renderer) -> None:
    """Shut lashes hang down as a band about a tenth of the eye wide mid-lid (a hairline reads as
    an eye barely open, to people and to dlib)."""
    shut = luma(renderer.render(blink(1.0)))
    _, _, closed = renderer.backward_map(blink(1.0))
    for eye, upper in EYES:
        width = float(np.ptp(closed[list(eye)][:, 0]))
        x, y = np.round(closed[list(upper)][len(upper) // 2]).astype(int)
        reach = int(0.3 * width)
        column = shut[y - reach:y + reach, x]
        lid = np.median(shut[y - reach:y - reach // 2, x])
        assert (column < 0.6 * lid).sum() >= 0.1 * width


def test_dlib_reads_the_shut_eye_as_shut(rig: FaceRig, renderer: Renderer) -> None:
    """The evaluation counts blinks by dlib's eye aspect ratio: ours must dip as a real blink's does
    (real blinks: to 0.43-0.53 of open), with the head straight or turned."""
    pytest.importorskip("dlib")
    from facetalk.errors import FacetalkError
    from facetalk.eval.dlib_face import DlibFace
    from facetalk.eval.signals import eye_aspect_ratio

    try:
        faces = DlibFace.load()
    except FacetalkError as exc:
        pytest.skip(str(exc))
    for yaw in (0.0, -15.0, 15.0):
        ears = []
        for closure in (0.0, 1.0):
            faces.reset()
            found = faces.landmarks(np.ascontiguousarray(renderer.render(blink(closure, yaw))))
            assert found is not None
            ears.append(float(eye_aspect_ratio(found[0][None])[0]))
        assert ears[1] <= 0.6 * ears[0], f"yaw {yaw}: EAR {ears[1]:.3f} shut, {ears[0]:.3f} open"


@pytest.mark.parametrize("name", ["img11_painting_elderly_woman.png", "img16_woman_bw_tilted.jpg"])
def test_shut_lid_is_skin_over_a_dark_socket(shared_eval, name: str) -> None:
    """A deep socket's shadow (the painting) or eyeshadow (the photo) must not stay on the shut lid
    as a dark eye-shaped patch: the lid is about as light as the face's skin."""
    from facetalk.face.rig import build_rig
    from facetalk.media.image import read_image

    rig = build_rig(read_image(shared_eval / "images" / name), size=512)
    renderer = Renderer(rig)
    shut = renderer.render(blink(1.0))
    _, _, rest = renderer.backward_map(blink(0.0))
    _, _, closed = renderer.backward_map(blink(1.0))
    skin = float(rig.skin_rgb @ np.array([0.299, 0.587, 0.114]))
    for eye, upper in EYES:
        width = float(np.ptp(rest[list(eye)][:, 0]))
        lid = lid_above(rest[list(upper)], closed[list(upper)] - (0, 0.12 * width), shut.shape)
        assert luma(shut)[lid].mean() > 0.7 * skin


def test_half_shut_eye_is_between(rig: FaceRig, renderer: Renderer) -> None:
    """Half way down the lid covers part of the eye: less white than open, more than shut."""
    frames = [renderer.render(blink(c)).copy() for c in (0.0, 0.5, 1.0)]
    _, _, dst = renderer.backward_map(blink(0.0))
    for eye, _ in EYES:
        whites = [sclera_share(f, dst[list(eye)]) for f in frames]
        assert whites[0] > whites[1] > whites[2]


def test_lid_plate_changes_only_the_eyes(rig: FaceRig) -> None:
    changed = np.abs(rig.lid_plate.astype(np.int16) - rig.foreground.astype(np.int16)).max(2) > 0
    eyes = np.zeros(changed.shape, bool)
    for eye, _ in EYES:
        pts = rig.landmarks[list(eye), :2]
        width = float(np.ptp(pts[:, 0]))
        x0, y0 = np.floor(pts.min(0) - width).astype(int)
        x1, y1 = np.ceil(pts.max(0) + width).astype(int)
        eyes[max(y0, 0):y1, max(x0, 0):x1] = True
    assert changed.any()
    assert not (changed & ~eyes).any()


# --- the timing -------------------------------------------------------------------------------

def test_blink_is_shut_as_long_as_a_real_one() -> None:
    """Our lids read shut to dlib from eyeBlink CLOSED_LEVEL on; the time spent there is the real
    blinks' closed phase (eval EAR, medians of the real clips)."""
    dt = 0.0005
    t = np.arange(0.0, 1.0, dt)
    lid = blink_shape(t)
    shut = (lid >= CLOSED_LEVEL).sum() * dt
    assert shut == pytest.approx(REAL_PHASES_S[1], rel=0.2)
    assert 0.25 <= CLOSE_S + HOLD_S + OPEN_S <= 0.45  # a whole blink, open to open
    assert lid.max() == pytest.approx(1.0)  # and it does shut fully


def test_blink_closes_faster_than_it_opens_as_real_ones_do() -> None:
    dt = 0.0005
    t = np.arange(0.0, 1.0, dt)
    lid = blink_shape(t)
    peak = int(np.argmax(lid))
    closing = (np.argmax(lid[: peak + 1] >= CLOSED_LEVEL) - np.argmax(lid[: peak + 1] >= 0.1)) * dt
    opening = (np.argmax(lid[peak:] <= 0.1) - np.argmax(lid[peak:] <= CLOSED_LEVEL)) * dt
    real_closing, _, real_opening = REAL_PHASES_S
    assert closing < opening
    assert opening / closing == pytest.approx(real_opening / real_closing, rel=0.35)
