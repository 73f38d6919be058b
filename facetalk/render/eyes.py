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


def gaze_offset_px(gaze_yaw: float, gaze_pitch: float, px_per_cm: float) -> np.ndarray:
    """Iris shift in output px for a gaze (degrees; yaw + = subject's left, pitch + = up)."""
    r = EYEBALL_RADIUS_CM * px_per_cm
    return np.array([r * np.sin(np.radians(gaze_yaw)), -r * np.sin(np.radians(gaze_pitch))], np.float32)


def draw_eye(frame: np.ndarray, opening: np.ndarray, upper_lid: np.ndarray, closure: float,
             map_x: np.ndarray, map_y: np.ndarray, eye_plate: np.ndarray, foreground: np.ndarray,
             iris_alpha: np.ndarray, lid_plate: np.ndarray, lash_rgb: np.ndarray, shift_src: np.ndarray) -> None:
    """Composite one eye into `frame` in place.

    opening: (N, 2) output px of the lid contour; upper_lid: its upper half, corner to corner;
    closure: how closed the lid is (0 open .. 1 shut). As the lid closes, the skin around the eye
    fades to the lid plate (skin, no stretched lashes), a lash line follows the lid's edge, and
    the eyeball fades out over the last part of the closure so no sliver of it remains.
    """
    h, w = frame.shape[:2]
    pad = 2 + int(np.ceil(0.5 * (opening[:, 0].max() - opening[:, 0].min())))
    x0, y0 = np.floor(opening.min(0)).astype(int) - pad
    x1, y1 = np.ceil(opening.max(0)).astype(int) + pad
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
        width = max(1, int(round(0.035 * (opening[:, 0].max() - opening[:, 0].min()))))
        cv2.polylines(line, [np.round((upper_lid - (x0, y0)) * 8).astype(np.int32)], False, 255, width,
                      cv2.LINE_AA, shift=3)
        la = cv2.GaussianBlur(line, (3, 3), 0).astype(np.float32)[..., None] * (LASH_OPACITY * min(1.0, closure * 1.4) / 255.0)
        roi = roi * (1 - la) + lash_rgb * la
    frame[y0:y1, x0:x1] = np.clip(roi, 0, 255).astype(np.uint8)
