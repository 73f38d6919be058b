"""The closed lids, prepared once per photo: each eye opening skinned over with lid skin.

A closing lid is skin, not the lashes stretched: while an eye blinks, the renderer fades from the
photo to this plate around the eye and draws a lash line where the lid's edge now is (render/eyes.py).
The plate covers the opening grown over its lashes and the upper lid's fold up to about the crease
(a shut lid unrolls the fold: a dark crease left hanging over the lash line draws the almond of an
open eye, and dlib reads it as one). The fill is the skin around it inpainted inwards with the
darkest rim tones (lashes, eyeliner, the crease's shadow) left out, so it meets the photo without
a ring; over the lid's middle it brightens to the upper lid's light tone (a shut lid faces the
light more than the fold it unrolls from), lifted towards the lower lid's skin where the lid is
darker (eyeshadow, a deep socket's shadow); then noise as fine and as strong as the skin's own
grain, so it is not a flat colour on a textured face.
"""

from __future__ import annotations

import cv2
import numpy as np

from facetalk.face.landmarks import BROW_L, BROW_R, EYE_L, EYE_L_UPPER, EYE_R, EYE_R_UPPER

HOLE_GROW = 0.16  # of the eye's width: the opening is grown by this much (lashes, eyeliner) and filled
LID_COVER = 0.25  # of the eye's width: the upper lid's fold above the lashes is filled too, this high mid-lid
BROW_CLEAR = 0.0  # of the eye's width: the fill stays this far below the brow's lower edge
LID_BAND = (0.12, 0.6)  # of the eye's width: the upper-lid skin is sampled this far above the lashes
CHEEK_BAND = 0.15  # of the eye's width: the lower-lid skin sampled below it
LID_TONE = 90  # percentile of the lid band's brightness its colour is taken at (skip lashes, crease, shadow)
LID_LIFT = 0.8  # a lid band darker than the lower lid's skin is lifted this share of the way towards it
LOWER_SHARE = 0.35  # of the hole's height, at its bottom, over which the fill shades into the lower lid
UPPER_SHARE = 0.15  # ... and at its top, over which it comes out of the skin around it
CORNER_SHARE = 0.25  # of the eye's width, from each corner, over which the lid tone fades into the skin around
RIM_DARKEST = 30  # percentile: darker skin on the hole's rim (lashes, eyeliner, brows) is not spread into it
TEXTURE_SIGMA = 0.03  # of the eye's width: finer detail than this is the skin's grain, imitated
INPAINT_EYE_PX = 40  # the fill's base is inpainted at a scale where the eye is this wide
LASH_DARKEST = 20  # percentile: the lash colour is the mean of the darkest tones along the upper lid


def lid_plate(image: np.ndarray, landmarks2d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The image with each eye opening (grown over its lashes) filled with upper-lid skin.

    Args:
        image: (H, W, 3) uint8 RGB, the person's colours.
        landmarks2d: (478, 2) MediaPipe landmarks in the image's px.
    Returns:
        The plate (H, W, 3) uint8 and the lash colour (3,) float32: the darkest tones along the
        upper lids (a closed eye's lash line, and the eyeliner if there is some).
    """
    plate = image.copy()
    lash_samples = []
    for eye, upper, brow in ((EYE_R, EYE_R_UPPER, BROW_R), (EYE_L, EYE_L_UPPER, BROW_L)):
        poly = landmarks2d[list(eye)].astype(np.float64)
        width = float(np.linalg.norm(poly.max(0) - poly.min(0)))
        grow = max(2, int(round(HOLE_GROW * width)))
        band = (int(round(LID_BAND[0] * width)), max(3, int(round(LID_BAND[1] * width))))
        x0, y0 = np.floor(poly.min(0)).astype(int) - 2 * grow
        x1, y1 = np.ceil(poly.max(0)).astype(int) + 2 * grow
        y0 -= band[1]
        x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, image.shape[1]), min(y1, image.shape[0])
        if x1 - x0 < 4 or y1 - y0 < 4:
            continue
        roi = np.ascontiguousarray(plate[y0:y1, x0:x1]).astype(np.float32)
        hole = np.zeros(roi.shape[:2], np.uint8)
        cv2.fillPoly(hole, [np.round(poly - (x0, y0)).astype(np.int32)], 255)
        cv2.fillPoly(hole, [np.round(_fold(landmarks2d[list(upper)], LID_COVER * width) - (x0, y0)).astype(np.int32)], 255)
        hole = cv2.dilate(hole, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1)))
        lower_brow = landmarks2d[list(brow[5:])] - (x0, y0)  # the brow's lower edge
        order = np.argsort(lower_brow[:, 0])
        brow_y = np.interp(np.arange(x1 - x0), lower_brow[order, 0], lower_brow[order, 1])
        hole[np.arange(y1 - y0)[:, None] < brow_y[None] + BROW_CLEAR * width] = 0  # brows must not flicker
        lid_edge = landmarks2d[list(upper)] - (x0, y0)
        filled = _skin_fill(roi, hole > 0, lid_edge, band, max(2, int(round(CHEEK_BAND * width))),
                            max(0.8, TEXTURE_SIGMA * width))
        soft = cv2.GaussianBlur(hole, (0, 0), max(1.0, grow / 3)).astype(np.float32)[..., None] / 255.0
        plate[y0:y1, x0:x1] = np.clip(roi * (1 - soft) + filled * soft, 0, 255).astype(np.uint8)
        line = np.zeros_like(hole)
        cv2.polylines(line, [np.round(lid_edge).astype(np.int32)], False, 255, max(1, grow // 2))
        lash_samples.append(roi[line > 0].reshape(-1, 3))
    if lash_samples and len(np.concatenate(lash_samples)):
        samples = np.concatenate(lash_samples)
        dark = samples[samples.sum(1) <= np.percentile(samples.sum(1), LASH_DARKEST)]
        lash = dark.mean(0)
    else:
        lash = np.array([40.0, 30.0, 30.0])
    return plate, lash.astype(np.float32)


def _fold(upper: np.ndarray, height: float) -> np.ndarray:
    """(2N, 2) polygon: the upper lid's edge (corner to corner) and the same edge lifted by up to
    `height` px (most mid-lid, none at the corners), perpendicular to the corner-to-corner line."""
    chord = upper[-1] - upper[0]
    normal = np.array([chord[1], -chord[0]]) / max(float(np.linalg.norm(chord)), 1e-6)
    if normal[1] > 0:
        normal = -normal  # up in the image
    t = np.linspace(0.0, 1.0, len(upper))
    lifted = upper + normal * (height * np.sin(np.pi * t) ** 0.7)[:, None]
    return np.concatenate([upper, lifted[::-1]])


def _skin_fill(roi: np.ndarray, hole: np.ndarray, lid_edge: np.ndarray, band: tuple[int, int], cheek_px: int,
               sigma: float) -> np.ndarray:
    """(h, w, 3) float32 skin for the `hole` pixels of `roi`.

    The base is the skin around the hole inpainted into it, the darkest rim tones (lashes,
    eyeliner, the crease's shadow) left out of what is spread, so the fill meets the photo without
    a ring. Over the lid's middle (away from the hole's top, bottom and corners) it brightens to
    the upper lid's light tone (`band` px above the lid's edge `lid_edge`), lifted towards the lower
    lid's (`cheek_px` below the hole); then the skin's grain."""
    h, w = hole.shape
    cols = np.nonzero(hole.any(0))[0]
    if len(cols) == 0:
        return roi.copy()
    yy, xx = np.mgrid[0:h, 0:w]
    top, bottom = np.full(w, h), np.full(w, -1)
    top[cols] = hole[:, cols].argmax(0)
    bottom[cols] = h - 1 - hole[::-1, cols].argmax(0)
    luma = roi @ np.array([0.299, 0.587, 0.114], np.float32)
    edge_y = np.interp(np.arange(w), lid_edge[:, 0], lid_edge[:, 1])
    inside = (xx >= lid_edge[:, 0].min()) & (xx <= lid_edge[:, 0].max())
    above = inside & (yy <= edge_y[None] - band[0]) & (yy >= edge_y[None] - band[1]) & ~hole
    below = (yy > bottom[None]) & (yy <= bottom[None] + cheek_px)
    lid_rgb = _column_tone(roi, luma, above, LID_TONE)
    low_rgb = _column_tone(roi, luma, below, 50)
    lid_rgb = lid_rgb + LID_LIFT * np.maximum(low_rgb - lid_rgb, 0.0)  # out of the fold's shadow
    reach = max(2, int(round(2 * sigma)))  # the rim searched for dark tones
    rim = cv2.dilate(hole.astype(np.uint8), np.ones((2 * reach + 1, 2 * reach + 1), np.uint8)) > 0
    rim &= ~hole
    dark = rim & (luma < np.percentile(luma[rim], RIM_DARKEST)) if rim.any() else rim
    base = _inpaint(roi, hole | dark, lid_edge)
    t = np.clip((yy - top[None]) / np.maximum(1, bottom - top)[None], 0, 1)  # 0 at the hole's top, 1 at its bottom
    span = max(1.0, float(lid_edge[:, 0].max() - lid_edge[:, 0].min()))
    u = np.clip((xx - lid_edge[:, 0].min()) / span, 0, 1)  # 0 .. 1 corner to corner
    lid_w = (_smooth(t / UPPER_SHARE) * (1 - _smooth((t - (1 - LOWER_SHARE)) / LOWER_SHARE))
             * _smooth(np.minimum(u, 1 - u) / CORNER_SHARE))[..., None]
    out = base * (1 - lid_w) + lid_rgb[None] * lid_w + _grain((h, w), sigma, roi, (above, below))
    return np.where(hole[..., None], out, roi)


def _inpaint(roi: np.ndarray, hole: np.ndarray, lid_edge: np.ndarray) -> np.ndarray:
    """(h, w, 3) float32: `roi` with `hole` inpainted (Telea), at a scale where the eye is about
    INPAINT_EYE_PX wide (the fill is smooth; its cost grows with the hole's area times the radius
    squared), then brought back to full size; the grain is added afterwards at full size."""
    h, w = hole.shape
    f = min(1.0, INPAINT_EYE_PX / max(1.0, float(lid_edge[:, 0].max() - lid_edge[:, 0].min())))
    size = (max(4, round(w * f)), max(4, round(h * f)))
    src = cv2.resize(np.clip(roi, 0, 255).astype(np.uint8), size, interpolation=cv2.INTER_AREA)
    mask = cv2.resize(hole.astype(np.uint8) * 255, size, interpolation=cv2.INTER_AREA) > 0
    filled = cv2.inpaint(src, mask.astype(np.uint8) * 255, 3, cv2.INPAINT_TELEA)
    return cv2.resize(filled, (w, h), interpolation=cv2.INTER_LINEAR).astype(np.float32)


def _smooth(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


def _grain(shape: tuple[int, int], sigma: float, roi: np.ndarray, samples: tuple[np.ndarray, ...]) -> np.ndarray:
    """(h, w, 3) zero-mean noise as coarse and as strong as the skin's fine detail (the high-pass
    robust sd of the smoother of the `samples` regions: lashes, brows and creases are not grain),
    so the fill has the photo's grain but none of its structure. Seeded: the same photo gives the
    same plate."""
    detail = np.abs(roi - cv2.GaussianBlur(roi, (0, 0), sigma))
    sds = [1.4826 * np.median(detail[m], 0) for m in samples if m.any()]
    sd = np.min(sds, 0) if sds else np.zeros(3, np.float32)
    noise = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    noise = cv2.GaussianBlur(noise, (0, 0), max(0.5, sigma / 3))
    noise /= max(float(noise.std()), 1e-6)
    return noise[..., None] * sd.astype(np.float32)


def _column_tone(roi: np.ndarray, luma: np.ndarray, mask: np.ndarray, percentile: float) -> np.ndarray:
    """(w, 3): per column, the mean colour of `mask`'s pixels around the `percentile` of their
    brightness (between 0.7x and 1.25x that percentile), smoothed along x (the tone changes slowly
    across a lid); columns without pixels borrow the whole mask's tone."""
    w = mask.shape[1]
    if not mask.any():
        return np.repeat(np.median(roi.reshape(-1, 3), 0)[None], w, 0).astype(np.float32)
    col = np.where(mask, luma, np.nan)
    has = mask.any(0)
    ranked = np.sort(col, axis=0)  # NaN (outside the mask) sorts last
    n = mask.sum(0)
    at = lambda q: ranked[np.clip(np.round((n - 1) * q / 100).astype(int), 0, None), np.arange(w)]  # noqa: E731
    lo = np.where(has, at(percentile * 0.7), np.inf)
    hi = np.where(has, at(min(100.0, percentile * 1.25)), -np.inf)
    sel = (mask & (luma >= lo[None]) & (luma <= hi[None])).astype(np.float32)
    count = sel.sum(0)
    tone = (roi * sel[..., None]).sum(0) / np.maximum(count, 1)[:, None]
    level = np.percentile(luma[mask], percentile)
    near = mask & (np.abs(luma - level) <= np.percentile(np.abs(luma[mask] - level), 20))
    tone[count == 0] = roi[near].mean(0)
    k = max(3, (w // 6) | 1)
    return cv2.GaussianBlur(tone[None].astype(np.float32), (k, 1), 0)[0].reshape(w, 3)
