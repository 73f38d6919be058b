"""Paste the animated crop back into the whole photo, with a seam no one can see.

The crop's border pixels never move (the mesh pins them), so they already match the photo; a
feathered band along the crop's edge hides the remaining resampling difference.
"""

from __future__ import annotations

import cv2
import numpy as np

FULL_FRAME_MAX_SIDE = 1920  # px: longer side of full-frame output (H.264 at 4K is not real time)
FEATHER_SHARE = 0.06  # feathered band, as a share of the crop side


class Paster:
    """Per-photo constants for pasting crops; `paste` is the per-frame step."""

    def __init__(self, photo: np.ndarray, crop_to_photo: np.ndarray, crop_size: int,
                 max_side: int = FULL_FRAME_MAX_SIDE) -> None:
        h, w = photo.shape[:2]
        f = min(1.0, max_side / max(h, w))
        out_w, out_h = max(2, int(round(w * f)) // 2 * 2), max(2, int(round(h * f)) // 2 * 2)
        fx, fy = out_w / w, out_h / h
        self.background = cv2.resize(photo, (out_w, out_h), interpolation=cv2.INTER_AREA)
        # crop px -> output px
        a = crop_to_photo
        m = np.array([[a[0, 0] * fx, a[0, 1] * fx, a[0, 2] * fx], [a[1, 0] * fy, a[1, 1] * fy, a[1, 2] * fy]])
        x0, y0 = m[0, 2], m[1, 2]
        side_x, side_y = m[0, 0] * crop_size, m[1, 1] * crop_size
        self.box = (int(np.floor(max(x0, 0))), int(np.floor(max(y0, 0))),
                    int(np.ceil(min(x0 + side_x, out_w))), int(np.ceil(min(y0 + side_y, out_h))))
        bx0, by0, bx1, by1 = self.box
        # crop-frame coordinates for every output pixel of the box (a pure scale + shift)
        xs = (np.arange(bx0, bx1, dtype=np.float32) - x0) / m[0, 0]
        ys = (np.arange(by0, by1, dtype=np.float32) - y0) / m[1, 1]
        self.map_x, self.map_y = (m.astype(np.float32) for m in np.meshgrid(xs, ys))
        feather = max(2.0, FEATHER_SHARE * crop_size)
        edge = np.minimum.reduce([self.map_x, self.map_y, crop_size - 1 - self.map_x, crop_size - 1 - self.map_y])
        # edges of the crop that lie outside the photo need no feathering: nothing is there
        pad = np.zeros_like(edge)
        if x0 < 0:
            pad = np.maximum(pad, (self.map_x < feather) * feather)
        if y0 < 0:
            pad = np.maximum(pad, (self.map_y < feather) * feather)
        if x0 + side_x > out_w:
            pad = np.maximum(pad, (self.map_x > crop_size - 1 - feather) * feather)
        if y0 + side_y > out_h:
            pad = np.maximum(pad, (self.map_y > crop_size - 1 - feather) * feather)
        self.weight = np.clip((edge + pad) / feather, 0, 1).astype(np.float32)
        self.size = (out_w, out_h)

    def paste(self, crop_frame: np.ndarray) -> np.ndarray:
        out = self.background.copy()
        bx0, by0, bx1, by1 = self.box
        if bx1 <= bx0 or by1 <= by0:
            return out
        moved = cv2.remap(crop_frame, self.map_x, self.map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        region = out[by0:by1, bx0:bx1]
        out[by0:by1, bx0:bx1] = cv2.blendLinear(moved, region, self.weight, 1.0 - self.weight)
        return out
