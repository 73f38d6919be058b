"""The eyeballs: the iris moves with the gaze inside the lids; the sclera comes from the eye plate.

Both layers are sampled through the same backward map as the face, so they follow head pose and
lid motion; the iris layer is sampled with an extra offset for the gaze, and everything is clipped
by the eye opening (the lids), feathered by a pixel.
"""

from __future__ import annotations

import cv2
import numpy as np

EYEBALL_RADIUS_CM = 1.2  # an iris moves r*sin(angle) across the face when the eye turns
EYEBALL_FADE = 0.15  # the eyeball fades out over the last 15% of a closing lid
LASH_OPACITY = 0.85  # the drawn lash line, softer than the darkest lash tone
# Of the eye's width: the lid plate differs from the photo this far beside, above (the lid's fold,
# from a lid already shut) and below the eye opening (face/lids.py).
ROI_PAD = (0.45, 0.8, 0.45)
# A shut eye's lash line at its thickest (mid-lid), of the eye's width: real shut lashes are a band
# (docs/blinks.jpg); a hairline (0.035) left dlib reading most shut eyes as barely shut
# (tools/blink_probe.py: EAR 0.27-1.35 of open, now 0.21-0.70).
LASH_WIDTH = 0.14
LASH_BELOW = 0.5  # of that thickness below the lid's edge (the rest above it)
LASH_CORNER = 0.6  # of that thickness at the eye's corners
LASH_SOFT = 0.15  # of that thickness: the line's edges blur over this much (lashes, not a pen stroke)


def gaze_offset_px(gaze_yaw: float, gaze_pitch: float, px_per_cm: float) -> np.ndarray:
    """Iris shift in output px for a gaze (degrees; yaw + = subject's left, pitch + = up)."""
    r = EYEBALL_RADIUS_CM * px_per_cm
    return np.array([r * np.sin(np.radians(gaze_yaw)), -r * np.sin(np.radians(gaze_pitch))], np.float32)


def lash_band(upper_lid: np.ndarray, thickness: float) -> np.ndarray:
    """(2N, 2) polygon of the lash line along the lid's edge `upper_lid` (corner to corner, px):
    `thickness` px across mid-lid, tapering to LASH_CORNER of it at the corners."""
    chord = upper_lid[-1] - upper_lid[0]
    down = np.array([-chord[1], chord[0]]) / max(float(np.linalg.norm(chord)), 1e-6)
    if down[1] < 0:
        down = -down
    t = np.linspace(0.0, 1.0, len(upper_lid))
    across = (thickness * (LASH_CORNER + (1 - LASH_CORNER) * np.sin(np.pi * t) ** 0.5))[:, None] * down
    return np.concatenate([upper_lid - across * (1 - LASH_BELOW), (upper_lid + across * LASH_BELOW)[::-1]])


def draw_eye(frame: np.ndarray, opening: np.ndarray, upper_lid: np.ndarray, closure: float,
             map_x: np.ndarray, map_y: np.ndarray, eye_plate: np.ndarray, foreground: np.ndarray,
             iris_alpha: np.ndarray, lid_plate: np.ndarray, lash_rgb: np.ndarray, shift_src: np.ndarray) -> None:
    """Composite one eye into `frame` in place.

    opening: (N, 2) output px of the lid contour; upper_lid: its upper half, corner to corner;
    closure: how closed the lid is (0 open .. 1 shut). As the lid closes, the skin around the eye
    fades to the lid plate (skin, no stretched lashes, face/lids.py), a lash band that thickens as
    the lashes turn down follows the lid's edge, and the eyeball fades out over the last part of
    the closure so no sliver of it remains.
    """
    h, w = frame.shape[:2]
    eye_w = float(opening[:, 0].max() - opening[:, 0].min())
    side, above, below = (2 + int(np.ceil(p * eye_w)) for p in ROI_PAD)
    x0, y0 = np.floor(opening.min(0)).astype(int) - (side, above)
    x1, y1 = np.ceil(opening.max(0)).astype(int) + (side, below)
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if x1 - x0 < 3 or y1 - y0 < 2:
        return
    mx, my = map_x[y0:y1, x0:x1], map_y[y0:y1, x0:x1]
    roi = frame[y0:y1, x0:x1].astype(np.float32)
    if closure > 0.02:
        lid = cv2.remap(lid_plate, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE).astype(np.float32)
        roi = roi + (lid - roi) * min(1.0, closure * 1.4)
    eye_alpha = float(np.clip((1.0 - closure) / EYEBALL_FADE, 0.0, 1.0))
    if eye_alpha > 0:
        mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
        cv2.fillPoly(mask, [np.round((opening - (x0, y0)) * 8).astype(np.int32)], 255, cv2.LINE_AA, shift=3)
        m = mask.astype(np.float32)[..., None] * (eye_alpha / 255.0)
        sclera = cv2.remap(eye_plate, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        ix, iy = mx - shift_src[0], my - shift_src[1]
        iris = cv2.remap(foreground, ix, iy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        a = cv2.remap(iris_alpha, ix, iy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)[..., None]
        eye = sclera.astype(np.float32) * (1 - a) + iris.astype(np.float32) * a
        roi = roi * (1 - m) + eye * m
    if closure > 0.02:
        line = np.zeros((y1 - y0, x1 - x0), np.uint8)
        thickness = max(1.0, LASH_WIDTH * eye_w * (0.4 + 0.6 * closure))
        cv2.fillPoly(line, [np.round(lash_band(upper_lid - (x0, y0), thickness) * 8).astype(np.int32)], 255,
                     cv2.LINE_AA, shift=3)
        soft = cv2.GaussianBlur(line, (0, 0), max(0.6, LASH_SOFT * thickness))
        la = soft.astype(np.float32)[..., None] * (LASH_OPACITY * min(1.0, closure * 1.4) / 255.0)
        roi = roi * (1 - la) + lash_rgb * la
    frame[y0:y1, x0:x1] = np.clip(roi, 0, 255).astype(np.uint8)
