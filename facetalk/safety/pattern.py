"""The watermark's tile: one keyed 128×128 pattern, repeated over every frame.

The design follows the JAWS family of video watermarks (Kalker, Depovere, Haitsma and Maes, "A
video watermarking system for broadcast monitoring", SPIE 1999) and its successors: a
pseudo-random luminance pattern tiled at a fixed pixel period, so that a crop is a cyclic shift of
the tile and a resize a change of its period; the detector folds every frame into one tile,
accumulates, and finds the shift with a whitened FFT correlation (SPOMF).

The tile lives in the Fourier domain. Its energy sits in a mid-frequency annulus (BAND): lower
frequencies are swamped by the picture itself, higher ones are the first that H.264 and a 2×
downscale throw away. The annulus's frequency bins are dealt out by the key: SYNC_SHARE of them
carry a fixed pseudo-random phase (the sync, which says "a facetalk watermark is here, at this
shift and scale"); each of the others carries one coded payload bit as a phase flip (0 or π) on
its own pseudo-random phase. Disjoint bins make sync and payload exactly orthogonal at every
shift, so neither disturbs the other.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache

import numpy as np

from facetalk.safety.payload import CODED_BITS

PERIOD = 128  # px of the output: the tile's side
BAND = (0.035, 0.16)  # cycles per output pixel
SYNC_SHARE = 0.4  # of the band's bins (and so of the mark's energy)
KEY = b"facetalk invisible watermark, format 1"  # public: the mark proves origin, it is not a secret


@dataclass(frozen=True)
class Layout:
    """Which frequency bins of the tile carry what, and with which phase."""

    sync_bins: np.ndarray  # (n, 2) int: (ky, kx) in one half of the spectrum
    sync_phase: np.ndarray  # (n,) radians
    payload_bins: np.ndarray  # (m, 2) int
    payload_phase: np.ndarray  # (m,) radians, for a coded 0 (a 1 adds π)
    payload_bit: np.ndarray  # (m,) int: the coded bit each bin carries


@cache
def layout() -> Layout:
    """The key's layout; the same in every process (derived from KEY alone)."""
    rng = np.random.default_rng(np.frombuffer(hashlib.sha256(KEY).digest(), np.uint32))
    bins = _half_band()
    bins = bins[rng.permutation(len(bins))]
    n_sync = int(round(SYNC_SHARE * len(bins)))
    sync, pay = bins[:n_sync], bins[n_sync:]
    if len(pay) < CODED_BITS:
        raise AssertionError(f"the band holds {len(pay)} payload bins, fewer than {CODED_BITS} coded bits")
    return Layout(
        sync_bins=sync,
        sync_phase=rng.uniform(0, 2 * np.pi, len(sync)),
        payload_bins=pay,
        payload_phase=rng.uniform(0, 2 * np.pi, len(pay)),
        payload_bit=np.arange(len(pay)) % CODED_BITS,  # spread: each bit on bins all over the band
    )


def tile(coded: np.ndarray) -> np.ndarray:
    """The PERIOD×PERIOD float32 tile (zero mean, unit standard deviation) carrying `coded` bits."""
    lay = layout()
    flips = np.pi * np.asarray(coded, np.float64)[lay.payload_bit]
    spectrum = np.zeros((PERIOD, PERIOD), np.complex128)
    _put(spectrum, lay.sync_bins, np.exp(1j * lay.sync_phase))
    _put(spectrum, lay.payload_bins, np.exp(1j * (lay.payload_phase + flips)))
    t = np.fft.ifft2(spectrum).real
    return (t / t.std()).astype(np.float32)


@cache
def sync_spectrum() -> np.ndarray:
    """The sync's spectrum (unit magnitude on its bins, zero elsewhere): the detector's template."""
    lay = layout()
    spectrum = np.zeros((PERIOD, PERIOD), np.complex128)
    _put(spectrum, lay.sync_bins, np.exp(1j * lay.sync_phase))
    spectrum.setflags(write=False)
    return spectrum


@cache
def frequencies() -> np.ndarray:
    """(PERIOD, PERIOD, 2) signed frequency indices (ky, kx) of each FFT bin (read-only)."""
    k = np.fft.fftfreq(PERIOD, 1.0 / PERIOD)
    ky, kx = np.meshgrid(k, k, indexing="ij")
    freqs = np.stack([ky, kx], axis=-1)
    freqs.setflags(write=False)
    return freqs


def _half_band() -> np.ndarray:
    """Bins in BAND, one of each conjugate pair (the other is implied: the tile is real)."""
    k = frequencies()
    radius = np.hypot(k[..., 0], k[..., 1]) / PERIOD
    in_band = (radius >= BAND[0]) & (radius <= BAND[1])
    ky, kx = k[..., 0], k[..., 1]
    upper = (ky > 0) | ((ky == 0) & (kx > 0))
    return np.argwhere(in_band & upper)


def _put(spectrum: np.ndarray, bins: np.ndarray, values: np.ndarray) -> None:
    """Set `bins` and their conjugate partners, so the inverse FFT is real."""
    spectrum[bins[:, 0], bins[:, 1]] = values
    spectrum[(-bins[:, 0]) % PERIOD, (-bins[:, 1]) % PERIOD] = np.conj(values)
