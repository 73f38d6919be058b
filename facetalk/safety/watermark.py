"""Embed the invisible watermark: one call per frame, for files and the live stream alike.

    marker = Watermarker(Payload.new())
    for frame in frames:
        out = marker.mark(frame)      # (H, W, 3) uint8 RGB in, same shape out

Why a scheme of our own: ``invisible-watermark`` 0.2 (the well-kept library) does not meet our
targets (../shared/FACTS.md): its ``dwtDct`` does not survive H.264 or JPEG q80, ``dwtDctSvd``
survives but costs ~60 ms a frame (our budget is 2 ms), and ``rivaGan`` takes ~1 s a frame. So
this is a spread-spectrum mark from the literature (see ``pattern.py``): a keyed tile added to
the luminance, tiled at a fixed period of PERIOD output pixels, whatever the frame's size.

Invisibility: the tile is scaled by a perceptual mask, strong in texture (hair, fabric) and weak
in flat areas (backgrounds, smooth cheeks), where noise shows (contrast masking: the eye misses
noise in proportion to the texture around it). Texture is measured as the local *median* of the
high-pass amplitude, then eroded, so neither a lone sharp edge (a jaw line against a plain wall)
nor sparse detail (freckles, an eye in a smooth face) counts as texture: noise around those is
visible. Dark areas take somewhat more (luminance masking). The mask's overall level is capped
so each frame keeps PSNR ≥ 40 dB against the unmarked frame. Robustness lives in texture and
shadows: a flat, bright, smooth picture (a 3D cartoon) carries the weakest mark.

Cost: everything content-dependent is computed at half resolution; the full-size work is one
resize, one multiply and one saturating add (~0.8 ms for 512² on one core, proportional to the
pixels for larger frames; `facetalk bench --watermark`).
"""

from __future__ import annotations

import cv2
import numpy as np

from facetalk.safety import payload as payload_code
from facetalk.safety.pattern import PERIOD, tile
from facetalk.safety.payload import Payload

FLAT_GAIN = 0.65  # grey levels (× the unit-variance tile) in flat areas
TEXTURE_GAIN = 4.0  # at most, in dense texture
TEXTURE_SLOPE = 0.75  # gain per grey level of local median high-pass amplitude
MEDIAN_WINDOW = 5  # px at half resolution (~10 output px; OpenCV's median is 15× slower above 5)
ERODE_WINDOW = 5  # px at half resolution: texture must surround a pixel to mask it
LUMINANCE_WEIGHT = 0.5  # of the JND model's rise (its thresholds are for single details, not noise)
LUMINANCE_MAX = 2.0  # at most this many times the mid-grey gain, in the dark
MAX_RMS = 2.35  # grey levels: caps the mark at PSNR ≈ 40.4 dB (rounding included)
MIN_SIDE = 16  # px: smaller frames cannot hold a meaningful mark
_MEDIAN_QUANT = 8.0  # the median runs on uint8 (OpenCV's fast path): 1/8 grey-level steps


class Watermarker:
    """Marks every frame of one output with its payload.

    Holds the payload's tile and, per frame size, the tiled pattern (built on first use), so
    `mark` does no set-up work. One instance per output; not shared between threads.
    """

    def __init__(self, payload: Payload) -> None:
        self.payload = payload
        self._tile = tile(payload_code.encode(payload))
        self._patterns: dict[tuple[int, int], np.ndarray] = {}

    def mark(self, frame: np.ndarray) -> np.ndarray:
        """Return `frame` (H×W×3 uint8 RGB, any size ≥ 16 px) with the watermark added.

        The same luminance offset goes to R, G and B (no colour change), saturating at 0 and 255.
        """
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise ValueError(f"expected an (H, W, 3) uint8 RGB frame, got {frame.shape} {frame.dtype}")
        h, w = frame.shape[:2]
        if min(h, w) < MIN_SIDE:
            raise ValueError(f"frame too small to watermark: {w}×{h} (at least {MIN_SIDE} px a side)")
        delta = cv2.multiply(perceptual_mask(frame), self._pattern(h, w))
        return cv2.add(frame, cv2.cvtColor(delta, cv2.COLOR_GRAY2RGB), dtype=cv2.CV_8U)

    def _pattern(self, h: int, w: int) -> np.ndarray:
        pattern = self._patterns.get((h, w))
        if pattern is None:
            reps = (-(-h // PERIOD), -(-w // PERIOD))
            pattern = np.ascontiguousarray(np.tile(self._tile, reps)[:h, :w])
            self._patterns[(h, w)] = pattern
        return pattern


def luminance_factor(gray: np.ndarray) -> np.ndarray:
    """How much more mark a pixel hides for its background brightness than mid-grey does.

    The visibility threshold of Chou and Li's JND model (IEEE TCSVT 1995): lowest around grey
    127, rising in the dark (the eye resolves less there) and mildly in the bright; capped at
    LUMINANCE_MAX so deep shadows on a bright monitor stay clean.
    """
    bg = cv2.GaussianBlur(gray, (0, 0), 2.0)
    dark = 17.0 * (1.0 - np.sqrt(np.minimum(bg, 127.0) / 127.0)) + 3.0
    bright = 3.0 / 128.0 * (np.maximum(bg, 127.0) - 127.0) + 3.0
    return np.minimum(1.0 + LUMINANCE_WEIGHT * (np.maximum(dark, bright) / 3.0 - 1.0), LUMINANCE_MAX)


def perceptual_mask(frame: np.ndarray) -> np.ndarray:
    """H×W float32 gain (grey levels) for the unit-variance pattern: how much mark each pixel hides."""
    h, w = frame.shape[:2]
    gray = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
    half = cv2.resize(gray, (w // 2, h // 2), interpolation=cv2.INTER_AREA).astype(np.float32)
    detail = cv2.convertScaleAbs(half - cv2.GaussianBlur(half, (0, 0), 1.5), alpha=_MEDIAN_QUANT)
    texture = cv2.medianBlur(detail, MEDIAN_WINDOW).astype(np.float32) / _MEDIAN_QUANT
    gain = np.clip((FLAT_GAIN + TEXTURE_SLOPE * texture) * luminance_factor(half), FLAT_GAIN, TEXTURE_GAIN)
    gain = cv2.GaussianBlur(cv2.erode(gain, np.ones((ERODE_WINDOW, ERODE_WINDOW), np.uint8)), (0, 0), 1.0)
    rms = float(np.sqrt(np.mean(gain * gain)))  # ≈ the mark's RMS: the pattern has unit variance
    if rms > MAX_RMS:
        gain *= MAX_RMS / rms
    return cv2.resize(gain, (w, h), interpolation=cv2.INTER_LINEAR)
