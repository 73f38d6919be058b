"""Expression displacement fields, authored on each subject's own face in the canonical frame.

Each coefficient in [0, 1] owns a field of 3D offsets (centimetres, canonical frame) over the 478
landmarks; a frame's face is the neutral shape plus the weighted sum of fields. The fields are
built from anatomy rather than learned: the jaw rotates about its hinge, lip corners pull along the
cheek, lids slide over the eyeball to the opposite lid. Sizes are set against real faces: jawOpen = 1
parts the lips as far as real speakers' widest vowels (JAW_OPEN_GAP; the lower lip ~2.1 cm down),
a smile moves a corner about 0.7 cm.
"""

from __future__ import annotations

import numpy as np

from facetalk.face import landmarks as L
from facetalk.motion.track import EXPRESSIONS

JAW_MAX_RAD = 0.22  # rad: jaw rotation at jawOpen = 1 (a wide "ah": see JAW_OPEN_GAP)
# What jawOpen = 1 means: the inner-lip gap over face height (nose bridge to chin, the evaluation's
# dlib measure) of real speakers' widest vowels. Over the evaluation's real clips (dlib, every
# frame): GRID speakers' 99th percentile 0.12 (95th 0.10), all speakers' 99th 0.16 (95th 0.12),
# the expressive v23's 95th 0.15. Rendered on closed-mouth portraits jawOpen = 1 gives 0.14-0.17
# (dlib, mean 0.155; on the canonical face a 2.1 cm gap, the lower lip 2.1 cm down and 0.5 cm
# back), jawOpen = 0.5 gives 0.08-0.10: an ordinary open vowel (GRID's 90th percentile 0.09).
JAW_OPEN_GAP = 0.15
JAW_HINGE_CM = (0.0, 0.3, -1.0)  # the condyles, from the face oval's ear points (234/454)
JAW_GLIDE_CM = (0.0, -0.3, 0.8)  # the condyles' glide down and forward at jawOpen = 1
JAW_LINE_ABOVE_CM = 0.15  # the skull/jaw hand-over starts this far above the mouth corners ...
JAW_BAND_CM = (0.6, 1.6)  # ... and spreads over this height under the mouth / out on the cheeks
JAW_CORNER_SHARE = 0.45  # of the jaw's motion the mouth corners take ...
JAW_CORNER_SPREAD_CM = 0.6  # ... and the cheek around them, fading over this distance
SMILE_CM = np.array([0.55, 0.45, -0.25])  # corner offset (out, up, back) of a full smile
STRETCH_CM = np.array([0.45, -0.15, -0.1])
FROWN_CM = np.array([0.1, -0.5, 0.0])  # corner offset of a full frown (depressor anguli oris)
BROW_RAISE_CM = 0.45
JAW_CLOSING_SHARE = 0.8  # of an open photo's lip gap closed by raising the jaw; the lips close the rest
# Closing the jaw squeezes the cheek beside the mouth instead of stretching it: a rise of more than
# this (cm) over the hand-over band would fold the cheek over itself (the lower face slid over the
# upper, a seam running out of the lip corners), so a bigger rise spreads the band and the corners'
# pull over more skin, in proportion: at most ~0.7 squeeze per unit height anywhere.
JAW_CLOSE_RISE_CM = 0.75
LID_SIGMA_CM = 0.2  # how far above the lid the skin follows it: the crease stays, the lid plate covers the fold
LIP_MOVE_CM = 0.3  # how far upperLipUp / lowerLipDown move their lip at 1
LIP_SIDE_CM = 0.4  # over this band about the lip line a lip field fades from its lip's side to nothing


def _rbf(shape: np.ndarray, idx: list[int] | tuple[int, ...], disp: np.ndarray, sigma: float) -> np.ndarray:
    """Spread offsets given at control landmarks smoothly over the face (Gaussian falloff)."""
    ctrl = shape[list(idx)]
    d2 = ((shape[:, None, :] - ctrl[None, :, :]) ** 2).sum(-1)
    w = np.exp(-d2 / (2 * sigma**2))
    field = (w @ disp) / np.maximum(1.0, w.sum(1, keepdims=True))
    field[list(idx)] = disp
    return field


def _side(shape: np.ndarray, sign: float) -> np.ndarray:
    """Soft 0..1 mask of one half of the face (sign +1: subject's left = +x)."""
    return 1.0 / (1.0 + np.exp(-sign * shape[:, 0] / 0.4))


def _mirror(v: np.ndarray, sign: float) -> np.ndarray:
    return v * np.array([sign, 1.0, 1.0])


def jaw_open(shape: np.ndarray) -> np.ndarray:
    return _jaw_rotation(shape, JAW_MAX_RAD)


def jaw_weights(shape: np.ndarray, reach: float = 1.0) -> np.ndarray:
    """(N,) share of the jaw's rotation each vertex takes: the lower lip and everything below it
    within the mouth's width ride the jaw whole (a lip that lagged behind its own edges would
    smear); the upper lip stays with the skull; the corners go half way; beside the mouth the
    cheek hands over from skull to jaw over a band that widens outwards (the cheek stretches
    over ~1.5 cm, not along one crease). `reach` widens the band and the corners' spread (a big
    closing rise)."""
    centre_x = float(shape[list(L.MOUTH_CORNERS), 0].mean())
    half = max(0.5 * float(abs(shape[L.MOUTH_CORNERS[1], 0] - shape[L.MOUTH_CORNERS[0], 0])), 0.5)
    u = np.abs(shape[:, 0] - centre_x) / half  # 1 at the corners
    top = float(shape[list(L.MOUTH_CORNERS), 1].mean()) + JAW_LINE_ABOVE_CM
    band = reach * (JAW_BAND_CM[0] + (JAW_BAND_CM[1] - JAW_BAND_CM[0]) * np.clip((u - 0.8) / 0.7, 0.0, 1.0))
    w = np.clip((top - shape[:, 1]) / band, 0.0, 1.0)
    w = w * w * (3 - 2 * w)
    corners = shape[list(L.MOUTH_CORNERS)]
    d2 = ((shape[:, None, :] - corners[None]) ** 2).sum(-1).min(1)
    w = np.maximum(w, JAW_CORNER_SHARE * np.exp(-d2 / (2 * (reach * JAW_CORNER_SPREAD_CM) ** 2)))  # the modiolus
    taper = np.clip((u - 0.7) / 0.3, 0.0, 1.0)
    taper = taper * taper * (3 - 2 * taper)  # 0 in the middle of the mouth, 1 at its corners
    lower = [i for i in L.LIPS_INNER_LOWER + L.LIPS_OUTER_LOWER + L.LIPS_MID_LOWER if i < len(shape)]
    upper = [i for i in L.LIPS_INNER_UPPER + L.LIPS_OUTER_UPPER + L.LIPS_MID_UPPER if i < len(shape)]
    w[lower] = 1.0 - (1.0 - JAW_CORNER_SHARE) * taper[lower]
    w[upper] = JAW_CORNER_SHARE * taper[upper] ** 2
    w[list(L.MOUTH_CORNERS) + [78, 308]] = JAW_CORNER_SHARE
    return w


def _jaw_rotation(shape: np.ndarray, angle: float, reach: float = 1.0) -> np.ndarray:
    """Move the jaw's share of every vertex as a mandible opens: a rotation about the condyles
    (just in front of the ears, at the level of the ear canal) while they glide forward and down
    (JAW_GLIDE_CM at jawOpen = 1), so the lower lip drops mostly down, not back into the mouth."""
    ears = shape[[234, 454]].mean(0)
    hinge = ears + np.array(JAW_HINGE_CM)
    hinge[0] = 0.0
    c, s = np.cos(angle), np.sin(angle)
    rot = np.array([[1, 0, 0], [0, c, -s], [0, s, c]])  # angle > 0: chin moves down and back
    moved = (shape - hinge) @ rot.T + hinge + np.array(JAW_GLIDE_CM) * (angle / JAW_MAX_RAD)
    return (moved - shape) * jaw_weights(shape, reach)[:, None]


def _lip_gap_field(shape: np.ndarray, upper_share: float) -> np.ndarray:
    """Bring the inner lips together (they meet `upper_share` of the way down)."""
    up, lo = L.LIPS_INNER_UPPER[1:-1], L.LIPS_INNER_LOWER[-2:0:-1]
    gap = shape[list(lo)] - shape[list(up)]
    gap[:, 0] = 0.0
    gap[:, 2] = 0.0
    idx = list(up) + list(lo)
    disp = np.concatenate([gap * upper_share, -gap * (1 - upper_share)])
    outer = list(L.LIPS_OUTER_UPPER[1:-1]) + list(L.LIPS_OUTER_LOWER[1:-1])
    f = _rbf(shape, idx, disp, 0.35)
    f[outer] *= 0.6
    return f


def mouth_close(shape: np.ndarray) -> np.ndarray:
    """Shut a mouth the photo shows open, mostly as a jaw does: the lower lip and chin rise together,
    so the lips keep their thickness instead of being stretched over the gap; the lips themselves
    close what the jaw leaves."""
    up, lo = list(L.LIPS_INNER_UPPER[4:7]), list(L.LIPS_INNER_LOWER[6:3:-1])  # the middle three pairs
    gap = float(np.mean(shape[up, 1] - shape[lo, 1]))
    if gap <= 0.0:
        return _lip_gap_field(shape, 0.5)
    per_rad = float(np.mean(_jaw_rotation(shape, 0.01)[lo, 1])) / 0.01  # lower lip drop per radian (< 0)
    angle = JAW_CLOSING_SHARE * gap / per_rad  # negative: the jaw closes
    jaw = _jaw_rotation(shape, angle, max(1.0, JAW_CLOSING_SHARE * gap / JAW_CLOSE_RISE_CM))
    return jaw + _lip_gap_field(shape + jaw, 0.5)


def mouth_press(shape: np.ndarray) -> np.ndarray:
    """Lips pressed: thinned, the outer contours pulled towards the line between them. Closing the
    photo's lip gap is mouthClose's job; the two add up for an M in a photo taken mid-word."""
    mid = shape[list(L.LIPS_INNER)].mean(0)
    outer = list(L.LIPS_OUTER_UPPER[1:-1]) + list(L.LIPS_OUTER_LOWER[1:-1])
    disp = np.zeros((len(outer), 3))
    disp[:, 1] = (mid[1] - shape[outer, 1]) * 0.3
    return _rbf(shape, outer, disp, 0.25)


def _towards_centre(shape: np.ndarray, narrow: float, forward: float, open_cm: float) -> np.ndarray:
    lips = list(dict.fromkeys(L.LIPS_OUTER + L.LIPS_INNER))
    centre = shape[lips].mean(0)
    disp = np.zeros((len(lips), 3))
    disp[:, 0] = (centre[0] - shape[lips, 0]) * narrow
    disp[:, 2] = forward
    lower = set(L.LIPS_INNER_LOWER[1:-1] + L.LIPS_OUTER_LOWER[1:-1])
    upper = set(L.LIPS_INNER_UPPER[1:-1] + L.LIPS_OUTER_UPPER[1:-1])
    for k, i in enumerate(lips):
        if i in lower:
            disp[k, 1] -= open_cm
        elif i in upper:
            disp[k, 1] += open_cm * 0.4
    return _rbf(shape, lips, disp, 0.6)


def mouth_funnel(shape: np.ndarray) -> np.ndarray:
    return _towards_centre(shape, narrow=0.3, forward=0.6, open_cm=0.25)


def mouth_pucker(shape: np.ndarray) -> np.ndarray:
    return _towards_centre(shape, narrow=0.4, forward=0.7, open_cm=0.0)


def _corner(shape: np.ndarray, corner: int, offset: np.ndarray, sigma: float) -> np.ndarray:
    return _rbf(shape, [corner], offset[None, :], sigma)


def mouth_smile(shape: np.ndarray, sign: float) -> np.ndarray:
    corner = 291 if sign > 0 else 61
    f = _corner(shape, corner, _mirror(SMILE_CM, sign), 1.1)
    cheek = 425 if sign > 0 else 205
    f += _rbf(shape, [cheek], np.array([[0.08 * sign, 0.25, 0.1]]), 1.0)
    return f


def mouth_stretch(shape: np.ndarray, sign: float) -> np.ndarray:
    corner = 291 if sign > 0 else 61
    return _corner(shape, corner, _mirror(STRETCH_CM, sign), 1.0)


def mouth_frown(shape: np.ndarray, sign: float) -> np.ndarray:
    """Corners pulled down and a little out; the chin boss rises a touch (mentalis), as in sadness."""
    corner = 291 if sign > 0 else 61
    f = _corner(shape, corner, _mirror(FROWN_CM, sign), 0.8)
    f += _rbf(shape, [L.CHIN], np.array([[0.0, 0.08, 0.05]]), 0.9) * 0.5
    return f


def _one_lip(shape: np.ndarray, idx: list[int], other: list[int], disp: np.ndarray, above: bool) -> np.ndarray:
    """A field that moves one lip (and the skin on its side of the mouth) but not the other: on a
    shut mouth the two lips touch, and a plain falloff would carry the other lip along, so the
    lips would move together and never part."""
    field = _rbf(shape, idx, np.tile(disp, (len(idx), 1)), 0.5)
    mouth_y = shape[list(L.LIPS_INNER)][:, 1].mean()
    side = (shape[:, 1] - mouth_y) if above else (mouth_y - shape[:, 1])
    w = np.clip(side / LIP_SIDE_CM + 0.5, 0.0, 1.0)
    field *= (w * w * (3 - 2 * w))[:, None]
    field[other] = 0.0
    field[idx] = disp
    return field


def upper_lip_up(shape: np.ndarray) -> np.ndarray:
    idx = list(L.LIPS_INNER_UPPER[2:-2]) + list(L.LIPS_OUTER_UPPER[2:-2])
    other = list(L.LIPS_INNER_LOWER) + list(L.LIPS_OUTER_LOWER)
    return _one_lip(shape, idx, other, np.array([0.0, LIP_MOVE_CM, 0.05]), above=True)


def lower_lip_down(shape: np.ndarray) -> np.ndarray:
    idx = list(L.LIPS_INNER_LOWER[2:-2]) + list(L.LIPS_OUTER_LOWER[2:-2])
    other = list(L.LIPS_INNER_UPPER) + list(L.LIPS_OUTER_UPPER)
    return _one_lip(shape, idx, other, np.array([0.0, -LIP_MOVE_CM, 0.05]), above=False)


def _lid(shape: np.ndarray, upper: tuple[int, ...], lower: tuple[int, ...], close: float) -> np.ndarray:
    """Upper lid slides `close` of the way to the lower lid (negative: opens wider)."""
    up = list(upper[1:-1])
    lo = list(lower[-2:0:-1])  # lower lid points matched to `up`, corner to corner
    gap = shape[lo] - shape[up]
    field = _rbf(shape, up, gap * close, LID_SIGMA_CM)
    below = shape[:, 1] < shape[up][:, 1].min() - 0.05
    field[below] = 0.0  # the lower lid and cheek do not follow the upper lid's field
    if close > 0:
        field[lo] = -gap * 0.12
    return field


def eye_blink(shape: np.ndarray, sign: float) -> np.ndarray:
    """A closed eye: the upper lid reaches 88% down while the lower lid rises 12%."""
    upper, lower = (L.EYE_L_UPPER, L.EYE_L_LOWER) if sign > 0 else (L.EYE_R_UPPER, L.EYE_R_LOWER)
    return _lid(shape, upper, lower, 0.88)


def eye_wide(shape: np.ndarray) -> np.ndarray:
    return _lid(shape, L.EYE_L_UPPER, L.EYE_L_LOWER, -0.3) + _lid(shape, L.EYE_R_UPPER, L.EYE_R_LOWER, -0.3)


def eye_squint(shape: np.ndarray) -> np.ndarray:
    f = np.zeros_like(shape)
    for upper, lower in ((L.EYE_L_UPPER, L.EYE_L_LOWER), (L.EYE_R_UPPER, L.EYE_R_LOWER)):
        lo = list(lower[1:-1])
        gap = shape[list(upper[-2:0:-1])] - shape[lo]
        f += _rbf(shape, lo, gap * 0.3, 0.3)
    return f


def _brow(shape: np.ndarray, idx: tuple[int, ...], disp: np.ndarray) -> np.ndarray:
    return _rbf(shape, list(idx), np.tile(disp, (len(idx), 1)), 0.9)


def brow_inner_up(shape: np.ndarray) -> np.ndarray:
    inner = (107, 66, 55, 65, 336, 296, 285, 295)
    return _brow(shape, inner, np.array([0.0, BROW_RAISE_CM, 0.0]))


def brow_outer_up(shape: np.ndarray, sign: float) -> np.ndarray:
    outer = (300, 293, 276, 283) if sign > 0 else (70, 63, 46, 53)
    return _brow(shape, outer, np.array([0.0, BROW_RAISE_CM, 0.0]))


def brow_down(shape: np.ndarray, sign: float) -> np.ndarray:
    brow = L.BROW_L if sign > 0 else L.BROW_R
    return _brow(shape, brow, np.array([-0.12 * sign, -0.3, 0.0]))


def cheek_raise(shape: np.ndarray) -> np.ndarray:
    return _rbf(shape, [425, 205], np.array([[0.0, 0.3, 0.1], [0.0, 0.3, 0.1]]), 1.0)


def build_basis(shape: np.ndarray) -> np.ndarray:
    """(len(EXPRESSIONS), 478, 3) float32 offsets in cm for a face `shape` in the canonical frame."""
    shape = shape.astype(np.float64)
    builders = {
        "jawOpen": jaw_open, "mouthClose": mouth_close, "mouthFunnel": mouth_funnel,
        "mouthPucker": mouth_pucker, "mouthSmileL": lambda s: mouth_smile(s, 1.0),
        "mouthSmileR": lambda s: mouth_smile(s, -1.0), "mouthStretchL": lambda s: mouth_stretch(s, 1.0),
        "mouthStretchR": lambda s: mouth_stretch(s, -1.0), "mouthPress": mouth_press,
        "upperLipUp": upper_lip_up, "lowerLipDown": lower_lip_down,
        "eyeBlinkL": lambda s: eye_blink(s, 1.0), "eyeBlinkR": lambda s: eye_blink(s, -1.0),
        "eyeWide": eye_wide, "eyeSquint": eye_squint, "browInnerUp": brow_inner_up,
        "browOuterUpL": lambda s: brow_outer_up(s, 1.0), "browOuterUpR": lambda s: brow_outer_up(s, -1.0),
        "browDownL": lambda s: brow_down(s, 1.0), "browDownR": lambda s: brow_down(s, -1.0),
        "cheekRaise": cheek_raise, "mouthFrownL": lambda s: mouth_frown(s, 1.0),
        "mouthFrownR": lambda s: mouth_frown(s, -1.0),
    }
    return np.stack([builders[name](shape) for name in EXPRESSIONS]).astype(np.float32)
