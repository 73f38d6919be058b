"""The mouth interior, drawn inside the opened inner-lip contour.

The photo rarely shows the inside of the mouth, so it is painted: a dark cavity shaded deeper at
the back, upper teeth hanging from the upper lip (fixed to the skull), lower teeth rising from the
lower lip (following the jaw), a tongue behind them; coloured from the subject's skin so the
lighting matches, grey for black-and-white photos. The contour is filled anti-aliased and feathered
so no hard edge shows.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

UPPER_TEETH_SHARE = 0.16  # visible upper-teeth height / mouth width
LOWER_TEETH_SHARE = 0.09
TOOTH_EDGES_U = (0.0, 0.2, 0.38, 0.53, 0.66, 0.78)  # tooth boundaries across the mouth (|u|)
MIN_GAP_PX = 0.6  # below this the lips touch: nothing to draw


@dataclass(frozen=True)
class MouthPalette:
    cavity: np.ndarray  # (3,) float32 RGB
    teeth: np.ndarray
    tongue: np.ndarray


def mouth_palette(skin_rgb: np.ndarray, grayscale: bool) -> MouthPalette:
    light = float(np.clip(skin_rgb.mean() / 170.0, 0.45, 1.3))
    cavity = np.array([62.0, 22.0, 24.0]) * light
    # Teeth in a mouth are never paper-white: shadowed by the lips and tinted by the skin's light.
    teeth = (0.75 * np.array([218.0, 210.0, 192.0]) + 0.25 * skin_rgb) * min(1.0, light * 0.9)
    tongue = np.array([160.0, 74.0, 78.0]) * light * 0.8
    cols = [cavity, teeth, tongue]
    if grayscale:
        cols = [np.full(3, c @ np.array([0.299, 0.587, 0.114])) for c in cols]
    return MouthPalette(*(np.asarray(c, np.float32) for c in cols))


def _profile(contour: np.ndarray, xs: np.ndarray) -> np.ndarray:
    order = np.argsort(contour[:, 0])
    return np.interp(xs, contour[order, 0], contour[order, 1])


def _source_layers(xs_u: np.ndarray, ys: np.ndarray, top: np.ndarray, bottom: np.ndarray,
                   src_upper: np.ndarray, src_lower: np.ndarray, image: np.ndarray):
    """The photo's own mouth interior, split at its middle: the upper half hangs from the upper
    lip, the lower half rides on the lower lip. Returns (upper rgb, upper a, lower rgb, lower a)."""
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
    a_up = (np.clip(s_mid - up_y + 0.5, 0, 1) * open_)[..., None]
    a_lo = (np.clip(lo_y - s_mid + 0.5, 0, 1) * open_)[..., None]
    return up, a_up, lo, a_lo


def draw_mouth(frame: np.ndarray, upper: np.ndarray, lower: np.ndarray, palette: MouthPalette,
               src_upper: np.ndarray, src_lower: np.ndarray, image: np.ndarray, photo_open: bool) -> None:
    """Paint the interior into `frame` (in place) between the inner-lip contours.

    upper, lower: (N, 2) output px of the upper and lower inner lip, each from corner to corner;
    src_upper, src_lower: the same contours in the photo. When the photo shows its own open
    mouth (`photo_open`), its teeth are reused, moved with the lips; otherwise teeth are painted.
    """
    poly = np.concatenate([upper, lower[1:-1]])
    gap = np.max(_profile(lower, upper[:, 0]) - upper[:, 1])
    if gap < MIN_GAP_PX:
        return
    h, w = frame.shape[:2]
    x0, y0 = np.floor(poly.min(0)).astype(int) - 2
    x1, y1 = np.ceil(poly.max(0)).astype(int) + 3
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
    u = np.abs(xs_u)[None, :]
    opening = np.maximum(bottom - top, 1.0)
    depth_t = np.clip((ys - top) / opening, 0, 1)

    shade = (1.0 - 0.55 * np.clip(u, 0, 1) ** 2)[..., None]
    out = palette.cavity * (0.55 + 0.45 * np.abs(depth_t - 0.5)[..., None] * 2) * shade

    tongue = ((xs[None, :] - (left + right) / 2) / (0.45 * width)) ** 2 + \
        ((ys - (bottom - 0.15 * opening)) / (0.3 * opening + 1.0)) ** 2
    t_alpha = np.clip((1.0 - tongue) * 2.0, 0, 1)[..., None] * 0.85
    out = out * (1 - t_alpha) + palette.tongue * shade * t_alpha

    if photo_open:
        up, a_up, lo, a_lo = _source_layers(xs_u, ys, top, bottom, src_upper, src_lower, image)
        out = out * (1 - a_lo) + lo * a_lo
        out = out * (1 - a_up) + up * a_up
    else:
        gaps = np.min(np.abs(u[..., None] - np.array(TOOTH_EDGES_U)), axis=-1)
        separations = (1.0 - 0.12 * np.exp(-(gaps / 0.015) ** 2))[..., None]
        lip_shadow = (0.72 + 0.28 * np.clip((ys - top) / 3.0, 0, 1))[..., None]  # the upper lip's shadow
        teeth = palette.teeth * shade * separations * lip_shadow
        upper_h = UPPER_TEETH_SHARE * width * (1.0 - 0.45 * u**2)
        ut = (np.clip((top + upper_h - ys) / 1.5, 0, 1) * (u < 0.85))[..., None]
        lower_h = LOWER_TEETH_SHARE * width * (1.0 - 0.5 * u**2)
        lt = (np.clip((ys - (bottom - lower_h)) / 1.5, 0, 1) * (u < 0.75))[..., None]
        out = out * (1 - lt) + teeth * 0.8 * lt
        out = out * (1 - ut) + teeth * ut

    roi = frame[y0:y1, x0:x1].astype(np.float32)
    frame[y0:y1, x0:x1] = np.clip(roi * (1 - m) + out * m, 0, 255).astype(np.uint8)
