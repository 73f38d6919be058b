"""The decoder: FaceRig + Motion -> one RGB frame of the working crop.

Steps per frame: deform the mesh, rasterise the backward map, sample the un-mixed person (colour
and mask in one remap), lay it over the background plate, then paint what the photo never showed:
the eyeballs and the mouth interior.
"""

from __future__ import annotations

import cv2
import numpy as np

from facetalk.face import landmarks as L
from facetalk.face.rig import FaceRig
from facetalk.motion.track import Motion
from facetalk.render.deform import deform, mesh_geometry, project
from facetalk.render.eyes import draw_eye, gaze_offset_px
from facetalk.render.mouth import draw_mouth, fill_photo_cavity, mouth_palette, photo_sclera, photo_teeth
from facetalk.render.raster import rasterize_map

MAP_STEP = 2  # the backward map is rasterised at 1/MAP_STEP resolution and upsampled (it is smooth)
SHUT_FILL_MIN_SHARE = 0.03  # the photo's own cavity is filled for closing once its lips part this much (x width)
SHUT_FULL_AT = 1 / 3  # the filled cavity shows fully once the photo's lip gap has closed to this share of itself
PHOTO_OPEN_SHARE = 0.12  # an inner-lip gap over this share of the mouth width shows teeth worth reusing;
# a narrower one is a sliver that would smear when stretched open, so the interior is painted instead


class Renderer:
    """Holds one rig's per-frame constants and scratch buffers; `render` is the hot path.

    Not thread-safe (it reuses buffers): use one Renderer per thread. The map is piecewise linear
    over triangles a few pixels wide or more, so rasterising it at half resolution and upsampling
    loses nothing visible and quarters the cost.
    """

    def __init__(self, rig: FaceRig) -> None:
        self.rig = rig
        self.geo = mesh_geometry(rig)
        s = rig.size
        self._coarse = s // MAP_STEP
        c = self._coarse
        # coarse pixel j sits at output px MAP_STEP*j + (MAP_STEP-1)/2, as cv2.resize assumes
        self._offset = (MAP_STEP - 1) / 2
        grid = np.arange(c, dtype=np.float32) * MAP_STEP + self._offset
        self._ident_x, self._ident_y = np.meshgrid(grid, grid)
        self._cmap_x = np.empty((c, c), np.float32)
        self._cmap_y = np.empty((c, c), np.float32)
        self._zbuf = np.empty((c, c), np.float32)
        alpha = np.round(rig.alpha * 255).astype(np.uint8)
        premultiplied = (rig.foreground.astype(np.uint16) * alpha[..., None] + 127) // 255
        self._person = np.dstack([premultiplied.astype(np.uint8), alpha])
        self._plate = rig.plate
        self._person_far: np.ndarray | None = None  # the person padded for zoom-out, made when needed
        self._src_upper = rig.landmarks[list(L.LIPS_INNER_UPPER), :2]
        self._src_lower = rig.landmarks[list(L.LIPS_INNER_LOWER[::-1]), :2]
        teeth = photo_teeth(rig.foreground, self._src_upper, self._src_lower, rig.skin_rgb)
        # the luma of the photo's eye whites (None: eyes shut), which lights the painted teeth
        self.sclera = photo_sclera(rig.foreground, [rig.landmarks[list(eye), :2] for eye in (L.EYE_R, L.EYE_L)])
        self._palette = mouth_palette(rig.skin_rgb, rig.grayscale, teeth, self.sclera)
        self._blink_l = rig.expressions.index("eyeBlinkL")
        self._blink_r = rig.expressions.index("eyeBlinkR")
        gap_px = rig.mouth_gap_cm * rig.pose.scale
        width_px = float(np.linalg.norm(self._src_upper[0] - self._src_upper[-1]))
        self._photo_open = gap_px > PHOTO_OPEN_SHARE * width_px
        self._mid_upper, self._mid_lower = list(L.LIPS_INNER_UPPER[4:7]), list(L.LIPS_INNER_LOWER[6:3:-1])
        self._src_gap = float(np.mean(rig.landmarks[self._mid_lower, 1] - rig.landmarks[self._mid_upper, 1]))
        self._shut_person = self._shut_texture() if self._src_gap > SHUT_FILL_MIN_SHARE * width_px else None
        # Teeth anchors in the canonical frame: the upper row is fixed to the skull where the
        # closed lips meet; the lower row moves with the jaw alone (not with the lip's own moves).
        close, jaw = rig.expressions.index("mouthClose"), rig.expressions.index("jawOpen")
        upper, lower = list(L.LIPS_INNER_UPPER), list(L.LIPS_INNER_LOWER[::-1])
        self._bite = rig.shape[upper] + rig.basis[close][upper]
        self._jaw_rows = np.array([jaw, close])
        self._lower_rest, self._lower_fields = rig.shape[lower], rig.basis[self._jaw_rows][:, lower]

    def _shut_texture(self) -> np.ndarray | None:
        """The person (premultiplied RGBA) with the photo's mouth cavity filled from its lips: what
        a closing mouth's seam samples (mouth.fill_photo_cavity)."""
        lm = self.rig.landmarks[:, :2]
        filled = fill_photo_cavity(self.rig.foreground, lm[list(L.LIPS_OUTER)], self._src_upper, self._src_lower)
        if filled is None:
            return None
        patch, (x0, y0, x1, y1) = filled
        out = self._person.copy()
        alpha = out[y0:y1, x0:x1, 3:].astype(np.uint16)
        out[y0:y1, x0:x1, :3] = ((patch.astype(np.uint16) * alpha + 127) // 255).astype(np.uint8)
        return out

    def _shut_mouth(self, person: np.ndarray, map_x: np.ndarray, map_y: np.ndarray, dst: np.ndarray) -> None:
        """Where the photo's open mouth is being closed, the lips' seam samples the filled cavity
        (in place), in proportion to how far the photo's lip gap has closed."""
        gap = float(np.mean(dst[self._mid_lower, 1] - dst[self._mid_upper, 1]))
        share = float(np.clip((1.0 - gap / self._src_gap) / (1.0 - SHUT_FULL_AT), 0.0, 1.0))
        if share <= 0.0:
            return
        s = self.rig.size
        lips = dst[list(L.LIPS_OUTER)]
        x0, y0 = np.maximum(np.floor(lips.min(0)).astype(int) - 3, 0)
        x1, y1 = np.minimum(np.ceil(lips.max(0)).astype(int) + 4, s)
        if x1 <= x0 or y1 <= y0:
            return
        shut = cv2.remap(self._shut_person, map_x[y0:y1, x0:x1], map_y[y0:y1, x0:x1], cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_REPLICATE)
        roi = person[y0:y1, x0:x1]
        person[y0:y1, x0:x1] = shut if share >= 1.0 else cv2.addWeighted(roi, 1.0 - share, shut, share, 0.0)

    def _sample_person(self, map_x: np.ndarray, map_y: np.ndarray, zoom: float) -> np.ndarray:
        """The person (premultiplied RGBA) through the map. When the person moves away from the
        camera the map reaches beyond the crop: there the person is transparent (the background
        plate shows), except below it, where the clothes carry on downwards; the cut at the sides
        and top is feathered."""
        if zoom >= 1.0:
            return cv2.remap(self._person, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        if self._person_far is None:
            self._person_far = _padded_person(self._person, self.rig.size // 2)
        m = float(self.rig.size // 2)
        return cv2.remap(self._person_far, map_x + m, map_y + m, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)

    def backward_map(self, motion: Motion) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Fill the maps for `motion`; returns (map_x, map_y, output positions of vertices)."""
        dst, depth, _ = deform(self.rig, self.geo, motion)
        if motion.scale == 1.0:
            np.copyto(self._cmap_x, self._ident_x)
            np.copyto(self._cmap_y, self._ident_y)
        else:  # beyond the mesh the whole frame is zoomed too (the border vertices moved with it)
            cx, cy = self.geo.zoom_centre
            np.copyto(self._cmap_x, cx + (self._ident_x - cx) / motion.scale)
            np.copyto(self._cmap_y, cy + (self._ident_y - cy) / motion.scale)
        self._zbuf.fill(np.inf)
        rasterize_map((dst - self._offset) / MAP_STEP, depth, self.geo.src, self.rig.triangles,
                      self._cmap_x, self._cmap_y, self._zbuf)
        s = self.rig.size
        map_x = cv2.resize(self._cmap_x, (s, s), interpolation=cv2.INTER_LINEAR)
        map_y = cv2.resize(self._cmap_y, (s, s), interpolation=cv2.INTER_LINEAR)
        return map_x, map_y, dst

    def render(self, motion: Motion) -> np.ndarray:
        rig = self.rig
        map_x, map_y, dst = self.backward_map(motion)
        person = self._sample_person(map_x, map_y, motion.scale)
        if self._shut_person is not None:
            self._shut_mouth(person, map_x, map_y, dst)
        behind = 255 - person[..., 3]
        background = cv2.multiply(self._plate, cv2.merge([behind, behind, behind]), scale=1.0 / 255.0)
        frame = cv2.add(cv2.cvtColor(person, cv2.COLOR_RGBA2RGB), background)
        shift = gaze_offset_px(motion.gaze_yaw, motion.gaze_pitch, rig.pose.scale)  # photo px: zoomed with the eye
        expr = motion.expressions()
        for eye, upper, closure in ((L.EYE_R, L.EYE_R_UPPER, expr[self._blink_r]),
                                    (L.EYE_L, L.EYE_L_UPPER, expr[self._blink_l])):
            draw_eye(frame, dst[list(eye)], dst[list(upper)], float(closure), map_x, map_y, rig.eye_plate,
                     rig.foreground, rig.iris_alpha, rig.lid_plate, rig.lash_rgb, shift)
        to_px = lambda x: project(rig, self.geo, motion, x)  # noqa: E731
        jaw_line = self._lower_rest + np.tensordot(expr[self._jaw_rows], self._lower_fields, axes=1)
        draw_mouth(frame, dst[list(L.LIPS_INNER_UPPER)], dst[list(L.LIPS_INNER_LOWER[::-1])], self._palette,
                   self._src_upper, self._src_lower, rig.foreground, self._photo_open,
                   bite=to_px(self._bite), jaw_line=to_px(jaw_line))
        return frame


def _padded_person(person: np.ndarray, margin: int) -> np.ndarray:
    """Premultiplied RGBA with `margin` px around it: transparent above and to the sides, the
    bottom row carried down below; the side and top edges fade out over a few per cent."""
    s = person.shape[0]
    feather = max(2, s // 32)
    ramp = np.minimum(1.0, (np.arange(s) + 0.5) / feather).astype(np.float32)
    fade = np.minimum.outer(ramp, np.minimum(ramp, ramp[::-1]))  # rows: top edge; columns: both sides
    out = np.zeros((s + 2 * margin, s + 2 * margin, 4), np.uint8)
    out[margin:margin + s, margin:margin + s] = (person * fade[..., None]).astype(np.uint8)
    out[margin + s:, margin:margin + s] = out[margin + s - 1, margin:margin + s]
    return out
