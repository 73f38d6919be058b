"""Find the watermark in decoded frames: is it there, how sure are we, and what does it carry.

1. Each frame's luminance is high-passed and locally normalised (so strong edges do not drown
   the faint mark) and the results are averaged over frames (`Accumulator`).
2. For every candidate scale (the video may have been resized: the tile's period in the file is
   PERIOD × scale) the average is resampled to the nominal period and folded into one tile; a crop
   only shifts the tile cyclically, which the correlation finds for free.
3. The folded tile is whitened in the Fourier domain and correlated with the sync (SPOMF). The
   score is the correlation peak in standard deviations of the whole correlation plane; the
   best over all shifts and scales is the detection statistic.
4. At the best shift and scale, the payload bins' phases give one soft value per coded bit, and
   the Viterbi decoder returns the payload when its CRC matches.
5. The watermark is found when the score reaches THRESHOLD, or a lower PAYLOAD_THRESHOLD with a
   payload whose CRC matches: on unmarked video the CRC matches by chance once in 256 (measured:
   1 in 288), independent evidence that lets a weak but readable mark count.

The threshold and the confidence come from measurements (`facetalk bench --watermark`, README).
On unmarked video the score is distributed as the maximum of about NULL_TRIALS independent
standard normals, one per (shift, scale) hypothesis (fitted to the tail of 600 scores of unmarked
generated and real clips under several keys: mean 5.1, sd 0.28, max 6.1). On marked video,
attacked or not, it ranges over about 8..20 (MARKED_SCORE). The confidence is the probability that
the video is marked given its score, at even prior odds, under these two models.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import cv2
import numpy as np

from facetalk.safety import payload as payload_code
from facetalk.safety.pattern import PERIOD, frequencies, layout, sync_spectrum
from facetalk.safety.payload import Payload

SCALE_RANGE = (0.4, 2.5)  # file size / output size: from a 2.5× downscale to a 2.5× upscale
SCALE_STEP = 0.004  # log step: misregisters the tile by < 1 px over 512 px
REFINE_STEPS = 9  # finer scales tried around the best coarse one
MAX_NOMINAL = 768  # px of output: the largest region folded (the centre of bigger frames)
MAX_FILE_SIDE = 1536  # px: larger frames are centre-cropped before anything else
THRESHOLD = 7.0  # score: "ours" at or above; an unmarked video scores this high with p ≈ 1e-5
PAYLOAD_THRESHOLD = 6.0  # score: "ours" at or above when the payload's CRC matches (p ≈ 0.007 / 256)
CRC_CHANCE = 2.0**-8  # that a random payload passes the CRC-8
NULL_TRIALS = 7e6  # effective independent hypotheses of the search (the null model)
NULL_MEDIAN = 5.1  # median score of unmarked video: below it the null model says nothing useful
MARKED_SCORE = (12.0, 4.0)  # mean and sd of a marked video's score (the alternative model), broad


@dataclass(frozen=True)
class Detection:
    """The verdict on a set of frames."""

    found: bool  # score ≥ THRESHOLD, or ≥ PAYLOAD_THRESHOLD with a payload that passes its CRC
    score: float  # peak of the sync correlation, in standard deviations
    confidence: float  # P(marked | score) at even prior odds (0..1)
    payload: Payload | None  # decoded and CRC-checked, or None
    scale: float  # file size / output size
    shift: tuple[float, float]  # (dy, dx) of the tile, output px
    frames: int  # frames accumulated


class Accumulator:
    """The running mean of the frames' normalised residuals, at the file's resolution."""

    def __init__(self) -> None:
        self._sum: np.ndarray | None = None
        self.frames = 0

    def add(self, frame: np.ndarray) -> None:
        """Add one decoded frame: H×W luminance or H×W×3 RGB, uint8."""
        gray = frame if frame.ndim == 2 else cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
        r = residual(_centre(gray, MAX_FILE_SIDE))
        if self._sum is None:
            self._sum = r
        elif r.shape != self._sum.shape:
            raise ValueError(f"frame size changed within the video: {r.shape} after {self._sum.shape}")
        else:
            self._sum += r
        self.frames += 1

    def mean(self) -> np.ndarray:
        if self._sum is None:
            raise ValueError("no frames to look for a watermark in")
        return self._sum / self.frames


def detect(frames: Iterable[np.ndarray]) -> Detection:
    """Look for the watermark in `frames` (decoded frames of one video, luminance or RGB uint8)."""
    acc = Accumulator()
    for frame in frames:
        acc.add(frame)
    return detect_in(acc)


def detect_in(acc: Accumulator) -> Detection:
    """Search the accumulated frames over scales (coarse, then refined around the best) and shifts."""
    mean = acc.mean()
    coarse = np.exp(np.arange(math.log(SCALE_RANGE[0]), math.log(SCALE_RANGE[1]), SCALE_STEP))
    score, scale, _, _ = max((_try_scale(mean, s) for s in coarse), key=lambda r: r[0])
    fine = scale * np.exp(np.linspace(-SCALE_STEP / 2, SCALE_STEP / 2, REFINE_STEPS))
    score, scale, shift, white = max((_try_scale(mean, s) for s in fine), key=lambda r: r[0])
    payload = _read_payload(white, shift) if score >= PAYLOAD_THRESHOLD else None
    return Detection(found=score >= THRESHOLD or payload is not None, score=score,
                     confidence=confidence(score, payload is not None), payload=payload,
                     scale=scale, shift=shift, frames=acc.frames)


def confidence(score: float, payload_ok: bool = False) -> float:
    """P(marked | score, whether a payload passed its CRC) at even prior odds: the null model
    against the marked model."""
    if score <= NULL_MEDIAN:
        return 0.0
    tail = 0.5 * math.erfc(score / math.sqrt(2))  # P(one null hypothesis ≥ score)
    log_null = (math.log(NULL_TRIALS) - score * score / 2 - 0.5 * math.log(2 * math.pi)
                + (NULL_TRIALS - 1) * math.log1p(-tail))  # density of the max of NULL_TRIALS normals
    mean, sd = MARKED_SCORE
    log_marked = -((score - mean) / sd) ** 2 / 2 - math.log(sd * math.sqrt(2 * math.pi))
    if payload_ok:
        log_null += math.log(CRC_CHANCE)  # a marked video's payload passes at these scores
    return 1.0 / (1.0 + math.exp(min(700.0, log_null - log_marked)))


def false_alarm_chance(score: float, payload_ok: bool = False) -> float:
    """The chance that an unmarked video scores `score` or more (and passes the CRC, if it did)."""
    tail = 0.5 * math.erfc(score / math.sqrt(2))
    return -math.expm1(NULL_TRIALS * math.log1p(-tail)) * (CRC_CHANCE if payload_ok else 1.0)


def residual(gray: np.ndarray) -> np.ndarray:
    """High-passed luminance, divided by its local RMS: every region votes with equal weight."""
    y = gray.astype(np.float32)
    r = y - cv2.GaussianBlur(y, (0, 0), 4.0)
    return r / (np.sqrt(cv2.GaussianBlur(r * r, (0, 0), 6.0)) + 2.0)


def fold(image: np.ndarray, scale: float) -> np.ndarray:
    """Resample `image` by 1/scale about its centre and sum its PERIOD×PERIOD tiles into one."""
    side = int(MAX_NOMINAL * scale)  # the file region that resamples to at most MAX_NOMINAL px
    image = _centre(image, side)
    h, w = image.shape
    out_h = -(-int(math.ceil(h / scale)) // PERIOD) * PERIOD
    out_w = -(-int(math.ceil(w / scale)) // PERIOD) * PERIOD
    m = np.float32([[1 / scale, 0, (out_w - w / scale) / 2], [0, 1 / scale, (out_h - h / scale) / 2]])
    warped = cv2.warpAffine(image, m, (out_w, out_h), flags=cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return warped.reshape(out_h // PERIOD, PERIOD, out_w // PERIOD, PERIOD).sum(axis=(0, 2))


def whiten(folded: np.ndarray) -> np.ndarray:
    """The folded tile's spectrum, flattened: each bin divided by the geometric mean of its own
    magnitude and its neighbourhood's (between phase-only SPOMF and a smooth noise estimate)."""
    spectrum = np.fft.fft2(folded)
    power = np.fft.fftshift(np.abs(spectrum) ** 2).astype(np.float32)
    local = np.sqrt(np.fft.ifftshift(cv2.GaussianBlur(power, (0, 0), 2.0)))
    return spectrum / np.sqrt((local + 1e-9) * (np.abs(spectrum) + 1e-9))


def _try_scale(mean: np.ndarray, scale: float) -> tuple[float, float, tuple[float, float], np.ndarray]:
    white = whiten(fold(mean, scale))
    corr = np.fft.ifft2(white * np.conj(sync_spectrum())).real
    std = float(corr.std())
    peak = np.unravel_index(int(np.argmax(corr)), corr.shape)
    score = float(corr[peak]) / std if std > 0 else 0.0
    return score, float(scale), _subpixel(corr, peak), white


def _subpixel(corr: np.ndarray, peak: tuple[int, int]) -> tuple[float, float]:
    """The peak's position refined by a parabola through it and its neighbours on each axis."""
    out = []
    for axis in (0, 1):
        idx = list(peak)
        vals = []
        for d in (-1, 0, 1):
            idx[axis] = (peak[axis] + d) % PERIOD
            vals.append(float(corr[tuple(idx)]))
        denom = vals[0] - 2 * vals[1] + vals[2]
        offset = 0.5 * (vals[0] - vals[2]) / denom if denom < 0 else 0.0
        out.append(peak[axis] + float(np.clip(offset, -0.5, 0.5)))
    return out[0], out[1]


def _read_payload(white: np.ndarray, shift: tuple[float, float]) -> Payload | None:
    """Soft bits from the payload bins' phases (undoing the tile's shift), Viterbi, CRC."""
    lay = layout()
    k = frequencies()[lay.payload_bins[:, 0], lay.payload_bins[:, 1]]
    ramp = 2 * np.pi * (k[:, 0] * shift[0] + k[:, 1] * shift[1]) / PERIOD
    values = white[lay.payload_bins[:, 0], lay.payload_bins[:, 1]]
    soft_bins = np.real(values * np.exp(1j * (ramp - lay.payload_phase)))
    soft = np.bincount(lay.payload_bit, weights=soft_bins, minlength=payload_code.CODED_BITS)
    return payload_code.decode(soft)


def _centre(image: np.ndarray, side: int) -> np.ndarray:
    h, w = image.shape[:2]
    top, left = max(0, (h - side) // 2), max(0, (w - side) // 2)
    return image[top : top + min(h, side), left : left + min(w, side)]

