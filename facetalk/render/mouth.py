"""The mouth interior, drawn inside the opened inner-lip contour.

The photo rarely shows the inside of the mouth, so it is painted the way a mouth is built: upper
teeth fixed to the skull (their edge sits where the closed lips meet, so they show only when the
lips part past it or the upper lip lifts), lower teeth riding on the jaw just behind the lower lip,
a tongue resting on the floor of the mouth, and a cavity that darkens with depth towards the
throat. Colours come from the subject's skin so the lighting matches (grey for black-and-white
photos); everything is drawn with soft edges and a camera-like blur, so nothing looks pasted.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

INCISOR_SHOW = 0.128  # upper teeth reach this far (x mouth width) below where the closed lips meet
LOWER_TEETH_SHARE = 0.0  # lower teeth top above the jaw-carried lip line, x mouth width: mostly hidden
ARCH_U = 0.78  # beyond this share of the half-width the teeth turn away into the dark (the arch)
TONGUE_TOP = 0.55  # the tongue's back rises to this share of the opening above the jaw line
MIN_GAP_PX = 0.6  # below this the lips touch: nothing to draw
CORNER_TAPER = 0.12  # the interior fades out over this share of the half-width at each corner
SOFT_SIGMA_PX = 0.6  # the painted interior is as soft as a camera would see it
PHOTO_DARK = 1.3  # x the lit cavity's luma: darker pixels of a photo's open mouth are its cavity
LIT_CAVITY_LUMA = 55.6  # a lit cavity's luma under skin of mean 170 (scaled by the skin's light)
CAVITY_DARK = 0.45  # x the lips' median luma: darker pixels next to the inner lips are the photo's cavity
# (a deep red lip in shadow is not much lighter than 0.5) ...
CAVITY_RIM = 0.7  # ... and so are pixels darker than this beyond the inner-lip corners (the lips are
# thin there, the cavity often lit) and next to the cavity (its anti-aliased rim)
FILL_REACH_PX = 3  # the lip colour a filled column takes is the median of this many px past its run
CORNER_REACH_PX = 2  # the cavity's dark is followed this far past the outer-lip landmarks
LIP_LINE = 0.3  # the filled cavity darkens by this in its middle: closed lips meet along a line
FILL_BLUR_PX = 3.0  # the filled columns are blurred along the lips over this
# The painted interior's look, relative to the skin (fitted to real speakers: tools/fit_mouth_look.py)
TEETH_LUMA = 0.81  # the teeth's luma, x the skin's, under eyes as bright as SCLERA_REF ...
SCLERA_REF = 0.72  # ... the median whites of the eyes, x the skin's luma (the real clips' first frames)
SCLERA_RANGE = (0.75, 1.35)  # how far the eyes' whites move the teeth off that (shadowed or odd eyes)
MIN_EYE_PX = 30  # fewer pixels inside the open eyes than this (tiny eyes) tell nothing
MIN_EYE_AREA = 0.06  # an eye opening smaller than this x its width squared is shut (open: ~0.2)
TEETH_TINT = 0.57  # their colour: ivory mixed this much towards the skin's (the same light)
TEETH_MIN_LIGHT = 90.0  # skin luma below this lights teeth as this (dark skin, white teeth)
LIP_SHADOW = 0.43  # the upper teeth darken by this just under the upper lip ...
TEETH_TURN = 0.23  # ... and by this at the arch's end, turning away from the light
CAVITY_REL = (0.654, 0.299, 0.254)  # the cavity by the lips, x the skin's RGB
CAVITY_DEPTH = 0.9  # it darkens by this towards the middle and the corners
TONGUE_REL = (0.6, 0.32, 0.34)  # the tongue, x the skin's RGB: pinker and out of the light (not fitted)
IVORY = np.array([242.0, 236.0, 220.0])
LUMA = np.array([0.299, 0.587, 0.114], np.float32)  # RGB -> luma (BT.601)


@dataclass(frozen=True)
class MouthPalette:
    cavity: np.ndarray  # (3,) float32 RGB
    teeth: np.ndarray
    tongue: np.ndarray
    dark: float = LIT_CAVITY_LUMA  # luma: a photo's open mouth darker than PHOTO_DARK x this is its cavity


def photo_sclera(image: np.ndarray, eyes: list[np.ndarray]) -> float | None:
    """Luma of the whites of the eyes (the 90th percentile inside the open eyes' openings, past the
    iris and lashes), or None when they hold too few pixels to tell (shut or tiny eyes)."""
    mask = np.zeros(image.shape[:2], np.uint8)
    for e in eyes:
        e = np.asarray(e, np.float32)
        width = float(np.ptp(e[:, 0]))
        if cv2.contourArea(e) >= MIN_EYE_AREA * width * width:
            cv2.fillPoly(mask, [np.round(e).astype(np.int32)], 1)
    inside = image[mask > 0].astype(np.float64)
    if len(inside) < MIN_EYE_PX:
        return None
    return float(np.percentile(inside @ LUMA, 90))


def mouth_palette(skin_rgb: np.ndarray, grayscale: bool, teeth_rgb: np.ndarray | None = None,
                  sclera: float | None = None) -> MouthPalette:
    """Interior colours lit like the skin; `teeth_rgb` (the photo's own teeth) when it shows some.

    Painted teeth are as much brighter than the skin as the whites of the eyes (`sclera`, their
    luma) are: both are white tissue in the face's light, and how bright real teeth are against
    the skin goes with how bright the eyes' whites are (log-log slope 1.05, r 0.58 over the 15
    real clips; the skin alone leaves them grey on a brightly lit face and chalky on a dim one)."""
    skin = np.asarray(skin_rgb, np.float64)
    y = max(float(skin @ LUMA), 1.0)
    cavity = skin * np.array(CAVITY_REL)  # near the lips; deeper in it darkens
    if teeth_rgb is None:  # never paper-white in a mouth: ivory in the skin's light, dimmer than it looks
        tint = (1.0 - TEETH_TINT) * IVORY / float(IVORY @ LUMA) + TEETH_TINT * skin / y
        eyes = 1.0 if sclera is None else float(np.clip(sclera / y / SCLERA_REF, *SCLERA_RANGE))
        teeth_rgb = TEETH_LUMA * eyes * max(y, TEETH_MIN_LIGHT) * tint / float(tint @ LUMA)
    tongue = skin * np.array(TONGUE_REL)  # inside, out of the light
    cols = [cavity, teeth_rgb, tongue]
    if grayscale:
        cols = [np.full(3, c @ LUMA) for c in cols]
    dark = LIT_CAVITY_LUMA * float(np.clip(skin.mean() / 170.0, 0.45, 1.3))
    return MouthPalette(*(np.asarray(np.clip(c, 0, 255), np.float32) for c in cols), dark=dark)


def _opening_polygon(upper: np.ndarray, lower: np.ndarray) -> np.ndarray:
    """The inner-lip outline; both contours run left to right, so it goes round, not across."""
    return np.concatenate([upper, lower[-2:0:-1]])


def photo_teeth(image: np.ndarray, upper: np.ndarray, lower: np.ndarray, skin_rgb: np.ndarray) -> np.ndarray | None:
    """The colour of the teeth the photo shows between its inner lips (brightest quarter of the
    opening, if clearly brighter than the skin), or None."""
    poly = _opening_polygon(upper, lower)
    mask = np.zeros(image.shape[:2], np.uint8)
    cv2.fillPoly(mask, [np.round(poly).astype(np.int32)], 255)
    px = image[mask > 0].astype(np.float32)
    if len(px) < 20:
        return None
    luma = px @ LUMA
    bright = px[luma >= np.percentile(luma, 75)]
    teeth = np.median(bright, axis=0)
    return teeth if teeth.mean() > 1.1 * float(np.mean(skin_rgb)) else None


def fill_photo_cavity(image: np.ndarray, outer: np.ndarray, upper: np.ndarray,
                      lower: np.ndarray) -> tuple[np.ndarray, tuple[int, int, int, int]] | None:
    """The photo's mouth shut: its cavity and teeth (the inner-lip opening, and the dark pixels
    between the lips out to the outer corners, where an open mouth's cavity often reaches past the
    inner-lip landmarks) filled down each column from the upper lip's colour to the lower lip's.

    Closing the mouth collapses the opening into a seam, and a seam in the warp samples between
    its two sides: the photo's cavity and teeth would show along it as a dark and white slit,
    running out past the lip corners. Lips on both sides of it make the seam a lip.
    outer: (N, 2) px of the outer-lip ring; upper, lower: the inner lip, corner to corner.
    Returns (filled RGB patch, (x0, y0, x1, y1) of the patch in the image), or None if the
    photo's lips do not part."""
    h, w = image.shape[:2]
    pad = FILL_REACH_PX + CORNER_REACH_PX + 2
    x0, y0 = np.maximum(np.floor(outer.min(0)).astype(int) - pad, 0)
    x1, y1 = np.minimum(np.ceil(outer.max(0)).astype(int) + pad + 1, (w, h))
    if x1 - x0 < 4 or y1 - y0 < 4:
        return None
    patch = image[y0:y1, x0:x1].copy()
    lips = np.zeros(patch.shape[:2], np.uint8)
    cv2.fillPoly(lips, [np.round(outer - (x0, y0)).astype(np.int32)], 255)
    opening = np.zeros_like(lips)
    cv2.fillPoly(opening, [np.round(_opening_polygon(upper, lower) - (x0, y0)).astype(np.int32)], 255)
    luma = patch.astype(np.float32) @ LUMA
    ring = (lips > 0) & (opening == 0)
    if ring.sum() < 20:
        return None
    # where the cavity may reach outside the inner-lip contour: just past it (the landmarks are a
    # px or two off), and beyond its corners out to the outer ones (and a little past those); not
    # the lips above and below it, which may be as dark (a deep red lip in shadow)
    near = cv2.dilate(lips, np.ones((2 * CORNER_REACH_PX + 1,) * 2, np.uint8)) > 0
    xs = np.arange(patch.shape[1])[None, :] + x0
    corners = (xs < min(upper[0, 0], lower[0, 0])) | (xs > max(upper[-1, 0], lower[-1, 0]))
    past = cv2.dilate(opening, np.ones((2 * CORNER_REACH_PX + 1,) * 2, np.uint8)) > 0
    lip_luma = float(np.median(luma[ring]))
    dark = ((luma < CAVITY_DARK * lip_luma) & past) | ((luma < CAVITY_RIM * lip_luma) & near & corners)
    hole = (cv2.dilate(opening, np.ones((3, 3), np.uint8)) > 0) | dark
    # only the dark that is part of the cavity: connected to the opening (not a lip's own shadow)
    _, labels = cv2.connectedComponents(hole.astype(np.uint8), connectivity=8)
    keep = np.unique(labels[opening > 0])
    hole = np.isin(labels, keep[keep > 0])
    rim = cv2.dilate(hole.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    hole |= rim & (luma < CAVITY_RIM * lip_luma)  # and its half-dark rim
    if not (hole & (opening == 0)).any() and opening.sum() == 0:
        return None
    rgb = patch.astype(np.float32)
    for x in range(patch.shape[1]):
        col = hole[:, x]
        if not col.any():
            continue
        ys = np.flatnonzero(col)
        starts = ys[np.r_[True, np.diff(ys) > 1]]
        ends = ys[np.r_[np.diff(ys) > 1, True]]
        for a, b in zip(starts, ends):
            above = rgb[max(a - FILL_REACH_PX, 0):a, x]
            below = rgb[b + 1:b + 1 + FILL_REACH_PX, x]
            if len(above) == 0 and len(below) == 0:
                continue
            top = np.median(above, 0) if len(above) else np.median(below, 0)
            bot = np.median(below, 0) if len(below) else top
            t = ((np.arange(a, b + 1) - a + 1) / (b - a + 2))[:, None]
            line = 1.0 - LIP_LINE * np.exp(-(((t - 0.5) / 0.2) ** 2))  # where the lips meet: a soft line
            rgb[a:b + 1, x] = (top * (1 - t) + bot * t) * line
    # each column took its own lip colours: blur along the lips, within the hole, to lose the stripes
    weight = cv2.GaussianBlur(hole.astype(np.float32), (0, 0), sigmaX=FILL_BLUR_PX, sigmaY=0.7)
    soft = cv2.GaussianBlur(rgb * hole[..., None], (0, 0), sigmaX=FILL_BLUR_PX, sigmaY=0.7)
    soft = soft / np.maximum(weight, 1e-3)[..., None]
    rgb = np.where(hole[..., None], soft, rgb)
    return np.clip(rgb + 0.5, 0, 255).astype(np.uint8), (int(x0), int(y0), int(x1), int(y1))


def _profile(contour: np.ndarray, xs: np.ndarray) -> np.ndarray:
    order = np.argsort(contour[:, 0])
    return np.interp(xs, contour[order, 0], contour[order, 1])


def _source_layers(xs_u: np.ndarray, ys: np.ndarray, top: np.ndarray, bottom: np.ndarray,
                   src_upper: np.ndarray, src_lower: np.ndarray, image: np.ndarray, dark: float):
    """The photo's own mouth interior, split at its middle: the upper half hangs from the upper
    lip, the lower half rides on the lower lip. Its own dark gap (luma under `dark`) is left out:
    moved apart, it would outline the painted cavity with a dark seam; the cavity is drawn there
    instead. Returns (upper rgb, upper a, lower rgb, lower a)."""
    left, right = src_upper[0, 0], src_upper[-1, 0]
    xs = left + (xs_u + 1) / 2 * (right - left)
    s_top = _profile(src_upper, xs)[None, :]
    s_bot = _profile(src_lower, xs)[None, :]
    s_mid = (s_top + s_bot) / 2
    open_ = np.clip(s_bot - s_top - 1.0, 0, 1)
    xs2 = np.broadcast_to(xs[None, :], (ys.shape[0], xs.shape[0])).astype(np.float32)
    up_y = (s_top + (ys - top)).astype(np.float32)
    lo_y = (s_bot - (bottom - ys)).astype(np.float32)
    up = cv2.remap(image, xs2, up_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE).astype(np.float32)
    lo = cv2.remap(image, xs2, lo_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE).astype(np.float32)
    lit_up = np.clip((up @ LUMA - dark) / (0.5 * dark), 0, 1)
    lit_lo = np.clip((lo @ LUMA - dark) / (0.5 * dark), 0, 1)
    a_up = (np.clip(s_mid - up_y + 0.5, 0, 1) * open_ * lit_up)[..., None]
    a_lo = (np.clip(lo_y - s_mid + 0.5, 0, 1) * open_ * lit_lo)[..., None]
    return up, a_up, lo, a_lo


def draw_mouth(frame: np.ndarray, upper: np.ndarray, lower: np.ndarray, palette: MouthPalette,
               src_upper: np.ndarray, src_lower: np.ndarray, image: np.ndarray, photo_open: bool,
               bite: np.ndarray, jaw_line: np.ndarray) -> None:
    """Paint the interior into `frame` (in place) between the inner-lip contours.

    upper, lower: (N, 2) output px of the upper and lower inner lip, each from corner to corner;
    src_upper, src_lower: the same contours in the photo. When the photo shows its own open
    mouth (`photo_open`), its teeth are reused, moved with the lips; otherwise teeth are painted,
    the upper row hanging from `bite` (where the closed lips would meet: the skull) and the lower
    row standing on `jaw_line` (the lower lip as the jaw alone has moved it); both (N, 2) output px.
    """
    poly = _opening_polygon(upper, lower)
    gap = np.max(_profile(lower, upper[:, 0]) - upper[:, 1])
    if gap < MIN_GAP_PX:
        return
    h, w = frame.shape[:2]
    x0, y0 = np.floor(poly.min(0)).astype(int) - 3
    x1, y1 = np.ceil(poly.max(0)).astype(int) + 4
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if x1 - x0 < 3 or y1 - y0 < 2:
        return
    mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
    cv2.fillPoly(mask, [np.round((poly - (x0, y0)) * 8).astype(np.int32)], 255, cv2.LINE_AA, shift=3)
    m = cv2.GaussianBlur(mask, (3, 3), 0.7).astype(np.float32)[..., None] / 255.0

    xs = np.arange(x0, x1, dtype=np.float32)
    ys = np.arange(y0, y1, dtype=np.float32)[:, None]
    top = _profile(upper, xs)[None, :]
    bottom = _profile(lower, xs)[None, :]
    left, right = upper[0, 0], upper[-1, 0]
    width = max(right - left, 1.0)
    xs_u = (xs - (left + right) / 2) / (width / 2)
    u = np.clip(np.abs(xs_u), 0, 1)[None, :]
    opening = np.maximum(bottom - top, 1.0)

    out = _cavity(palette, ys, top, bottom, opening, u)
    out = _over(out, *_tongue(palette, xs_u, ys, bottom, opening, width))
    if photo_open:
        dark = PHOTO_DARK * palette.dark
        up, a_up, lo, a_lo = _source_layers(xs_u, ys, top, bottom, src_upper, src_lower, image, dark)
        out = _over(out, lo, a_lo)
        out = _over(out, up, a_up)
    else:
        out = _over(out, *_lower_teeth(palette, ys, _profile(jaw_line, xs)[None, :], u, width))
        out = _over(out, *_upper_teeth(palette, ys, top, _profile(bite, xs)[None, :], u, width))
    out = cv2.GaussianBlur(out, (0, 0), SOFT_SIGMA_PX)

    m = m * np.clip((1.0 - u[..., None]) / CORNER_TAPER, 0, 1)  # the lips' own corners show through
    roi = frame[y0:y1, x0:x1].astype(np.float32)
    frame[y0:y1, x0:x1] = np.clip(roi * (1 - m) + out * m, 0, 255).astype(np.uint8)


def _over(under: np.ndarray, rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    return under * (1 - alpha) + rgb * alpha


def _ramp(x: np.ndarray) -> np.ndarray:
    """0 -> 1 over one pixel, centred on 0: an anti-aliased edge."""
    return np.clip(x + 0.5, 0.0, 1.0)


def _cavity(palette: MouthPalette, ys: np.ndarray, top: np.ndarray, bottom: np.ndarray, opening: np.ndarray,
            u: np.ndarray) -> np.ndarray:
    """Lit pink just inside the lips, darkening towards the middle and the corners (the throat
    and the cheeks are out of the light)."""
    mid = (top + bottom) / 2
    from_lips = 1.0 - np.abs(ys - mid) / (opening / 2 + 1.0)  # 0 at the lips, 1 in the middle
    depth = np.clip(0.55 * from_lips + 0.45 * u**2, 0, 1)
    shade = 1.0 - CAVITY_DEPTH * depth
    return (palette.cavity * shade[..., None]).astype(np.float32)


def _tongue(palette: MouthPalette, xs_u: np.ndarray, ys: np.ndarray, bottom: np.ndarray, opening: np.ndarray,
            width: float) -> tuple[np.ndarray, np.ndarray]:
    """The tongue's back, a broad mound on the floor of the mouth; it shows once the mouth opens
    a few pixels and catches a little light on its crest."""
    crest = bottom - TONGUE_TOP * opening * (1.0 - 0.6 * xs_u[None, :] ** 2)
    inside = _ramp(ys - crest) * (np.abs(xs_u) < 0.9)[None, :]
    crest_light = 1.0 + 0.12 * np.exp(-((ys - crest) / (0.12 * opening + 1.0)) ** 2)
    depth = 0.8 + 0.2 * np.clip((ys - crest) / (TONGUE_TOP * opening + 1.0), 0, 1)  # lit from the front
    shade = (crest_light * depth * (1.0 - 0.35 * xs_u[None, :] ** 2))[..., None]
    alpha = (inside * np.clip(opening / (0.12 * width) - 0.5, 0, 1))[..., None]
    return (palette.tongue * shade).astype(np.float32), alpha.astype(np.float32)


def _teeth_shade(u: np.ndarray) -> np.ndarray:
    """Teeth turn away from the light along the arch; the gaps between the front four are faint."""
    gaps = np.min(np.abs(u[..., None] - np.array([0.0, 0.22, 0.42])), axis=-1)
    return (1.0 - TEETH_TURN * u**2) * (1.0 - 0.06 * np.exp(-(gaps / 0.02) ** 2))


def _upper_teeth(palette: MouthPalette, ys: np.ndarray, top: np.ndarray, bite_y: np.ndarray, u: np.ndarray,
                 width: float) -> tuple[np.ndarray, np.ndarray]:
    edge = bite_y + INCISOR_SHOW * width * (1.0 - u**2) - 0.03 * width * u**2  # the arch curves up
    alpha = _ramp(edge - ys) * _ramp((ARCH_U - u) * width / 2)
    lip_shadow = 1.0 - LIP_SHADOW + LIP_SHADOW * np.clip((ys - top) / (0.05 * width + 1.0), 0, 1)
    shade = (_teeth_shade(u) * lip_shadow)[..., None]
    return (palette.teeth * shade).astype(np.float32), alpha[..., None].astype(np.float32)


def _lower_teeth(palette: MouthPalette, ys: np.ndarray, jaw_y: np.ndarray, u: np.ndarray,
                 width: float) -> tuple[np.ndarray, np.ndarray]:
    edge = jaw_y - LOWER_TEETH_SHARE * width * (1.0 - 0.5 * u**2)
    alpha = _ramp(ys - edge) * _ramp((ARCH_U - 0.2 - u) * width / 2)
    shade = (_teeth_shade(u) * 0.8)[..., None]  # in the shadow of the upper lip
    return (palette.teeth * shade).astype(np.float32), alpha[..., None].astype(np.float32)
