"""Rasterise a deformed mesh into a backward map (output pixel -> photo pixel), with depth.

Each output pixel inside a triangle gets the photo position of the same point on the undeformed
mesh, by barycentric interpolation; a depth buffer keeps the nearer surface where a turned head
folds over itself. cv2.remap then does the sampling.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def rasterize_map(dst: np.ndarray, depth_v: np.ndarray, src: np.ndarray, tris: np.ndarray,
                  map_x: np.ndarray, map_y: np.ndarray, zbuf: np.ndarray) -> None:
    """dst (V,2) output px, depth_v (V,), src (V,2) photo px, tris (T,3) -> fills the maps."""
    h, w = map_x.shape
    for t in range(tris.shape[0]):
        a, b, c = tris[t, 0], tris[t, 1], tris[t, 2]
        ax, ay = dst[a, 0], dst[a, 1]
        bx, by = dst[b, 0], dst[b, 1]
        cx, cy = dst[c, 0], dst[c, 1]
        area = (bx - ax) * (cy - ay) - (by - ay) * (cx - ax)
        if abs(area) < 1e-9:
            continue
        inv = 1.0 / area
        x0 = max(int(np.floor(min(ax, bx, cx))), 0)
        x1 = min(int(np.ceil(max(ax, bx, cx))), w - 1)
        y0 = max(int(np.floor(min(ay, by, cy))), 0)
        y1 = min(int(np.ceil(max(ay, by, cy))), h - 1)
        eps = -1e-4
        for y in range(y0, y1 + 1):
            py = y + 0.0
            for x in range(x0, x1 + 1):
                px = x + 0.0
                w0 = ((bx - px) * (cy - py) - (by - py) * (cx - px)) * inv
                w1 = ((cx - px) * (ay - py) - (cy - py) * (ax - px)) * inv
                w2 = 1.0 - w0 - w1
                if w0 < eps or w1 < eps or w2 < eps:
                    continue
                z = w0 * depth_v[a] + w1 * depth_v[b] + w2 * depth_v[c]
                if z >= zbuf[y, x]:
                    continue
                zbuf[y, x] = z
                map_x[y, x] = w0 * src[a, 0] + w1 * src[b, 0] + w2 * src[c, 0]
                map_y[y, x] = w0 * src[a, 1] + w1 * src[b, 1] + w2 * src[c, 1]
