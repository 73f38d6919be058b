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

INCISOR_SHOW = 0.09  # upper teeth reach this far (x mouth width) below where the closed lips meet
LOWER_TEETH_SHARE = 0.025  # lower teeth top above the jaw-carried lip line, x mouth width: mostly hidden
ARCH_U = 0.78  # beyond this share of the half-width the teeth turn away into the dark (the arch)
TONGUE_TOP = 0.55  # the tongue's back rises to this share of the opening above the jaw line
MIN_GAP_PX = 0.6  # below this the lips touch: nothing to draw
CORNER_TAPER = 0.12  # the interior fades out over this share of the half-width at each corner
SOFT_SIGMA_PX = 0.6  # the painted interior is as soft as a camera would see it
PHOTO_DARK = 1.3  # x the lit cavity's luma: darker pixels of a photo's open mouth are its cavity


@dataclass(frozen=True)
class MouthPalette:
    cavity: np.ndarray  # (3,) float32 RGB
    teeth: np.ndarray
    tongue: np.ndarray


def mouth_palette(skin_rgb: np.ndarray, grayscale: bool, teeth_rgb: np.ndarray | None = None) -> MouthPalette:
    """Interior colours lit like the skin; `teeth_rgb` (the photo's own teeth) when it shows some."""
    light = float(np.clip(skin_rgb.mean() / 170.0, 0.45, 1.3))
    cavity = np.array([96.0, 38.0, 40.0]) * light  # near the lips; deeper in it darkens
    if teeth_rgb is None:  # never paper-white in a mouth: a warm ivory lit by the skin's light
        teeth_rgb = (0.85 * np.array([242.0, 236.0, 220.0]) + 0.15 * skin_rgb) * float(np.clip(light, 0.8, 1.05))
    tongue = np.array([170.0, 80.0, 84.0]) * light * 0.8  # inside, out of the light
    cols = [cavity, teeth_rgb, tongue]
    if grayscale:
        cols = [np.full(3, c @ np.array([0.299, 0.587, 0.114])) for c in cols]
    return MouthPalette(*(np.asarray(c, np.float32) for c in cols))


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
    luma = px @ np.array([0.299, 0.587, 0.114], np.float32)
    bright = px[luma >= np.percentile(luma, 75)]
    teeth = np.median(bright, axis=0)
    return teeth if teeth.mean() > 1.1 * float(np.mean(skin_rgb)) else None


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
    luma = np.array([0.299, 0.587, 0.114], np.float32)
    lit_up = np.clip((up @ luma - dark) / (0.5 * dark), 0, 1)
    lit_lo = np.clip((lo @ luma - dark) / (0.5 * dark), 0, 1)
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
        dark = PHOTO_DARK * float(palette.cavity @ np.array([0.299, 0.587, 0.114]))
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
    shade = 1.0 - 0.72 * depth
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
    return (1.0 - 0.35 * u**2) * (1.0 - 0.06 * np.exp(-(gaps / 0.02) ** 2))


def _upper_teeth(palette: MouthPalette, ys: np.ndarray, top: np.ndarray, bite_y: np.ndarray, u: np.ndarray,
                 width: float) -> tuple[np.ndarray, np.ndarray]:
    edge = bite_y + INCISOR_SHOW * width * (1.0 - u**2) - 0.03 * width * u**2  # the arch curves up
    alpha = _ramp(edge - ys) * _ramp((ARCH_U - u) * width / 2)
    lip_shadow = 0.8 + 0.2 * np.clip((ys - top) / (0.05 * width + 1.0), 0, 1)
    shade = (_teeth_shade(u) * lip_shadow)[..., None]
    return (palette.teeth * shade).astype(np.float32), alpha[..., None].astype(np.float32)


def _lower_teeth(palette: MouthPalette, ys: np.ndarray, jaw_y: np.ndarray, u: np.ndarray,
                 width: float) -> tuple[np.ndarray, np.ndarray]:
    edge = jaw_y - LOWER_TEETH_SHARE * width * (1.0 - 0.5 * u**2)
    alpha = _ramp(ys - edge) * _ramp((ARCH_U - 0.2 - u) * width / 2)
    shade = (_teeth_shade(u) * 0.8)[..., None]  # in the shadow of the upper lip
    return (palette.teeth * shade).astype(np.float32), alpha[..., None].astype(np.float32)
