"""The visible mark (`--label`): a small "AI-generated" tag burned into the bottom-right corner.

White text on a translucent dark box, sized to the frame (about 3 % of its height), so it stays
legible on any background and after downscaling, without covering the face.
"""

from __future__ import annotations

import cv2
import numpy as np

TEXT = "AI-generated"
HEIGHT_SHARE = 0.03  # text cap height / frame height
MIN_TEXT_PX = 8  # below this the text is unreadable anyway
BOX_OPACITY = 0.55
_FONT = cv2.FONT_HERSHEY_SIMPLEX


def burn_label(frame: np.ndarray) -> np.ndarray:
    """A copy of `frame` (H×W×3 uint8 RGB) with the label in its bottom-right corner."""
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 RGB frame, got {frame.shape} {frame.dtype}")
    h, w = frame.shape[:2]
    x0, y0, x1, y1, scale, thick, base = label_box(h, w)
    out = frame.copy()
    roi = out[y0:y1, x0:x1]
    roi[:] = (roi.astype(np.float32) * (1.0 - BOX_OPACITY)).astype(np.uint8)
    pad = (y1 - y0 - base) // 2
    cv2.putText(roi, TEXT, (pad, y1 - y0 - pad), _FONT, scale, (255, 255, 255), thick, cv2.LINE_AA)
    return out


def label_box(h: int, w: int) -> tuple[int, int, int, int, float, int, int]:
    """(x0, y0, x1, y1) of the box in an h×w frame, and the font scale, thickness and text height."""
    text_px = max(MIN_TEXT_PX, round(HEIGHT_SHARE * h))
    scale = cv2.getFontScaleFromHeight(_FONT, text_px, 1)
    thick = max(1, round(text_px / 10))
    (tw, th), _ = cv2.getTextSize(TEXT, _FONT, scale, thick)
    pad = max(3, th // 2)
    margin = max(4, th)
    bw, bh = min(w, tw + 2 * pad), min(h, th + 2 * pad)
    x1, y1 = max(bw, w - margin), max(bh, h - margin)
    return x1 - bw, y1 - bh, x1, y1, scale, thick, th
