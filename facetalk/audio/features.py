"""Speech audio -> per-video-frame features that drive the motion layers.

Computed in one streaming pass over 16 kHz mono chunks (memory flat in the audio's length), with
filter state carried across chunk boundaries so chunking never changes the result. Frame i covers
samples [i*rate/fps, (i+1)*rate/fps), the sound heard while frame i is on screen.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from scipy.signal import butter, sosfilt, sosfilt_zi

from facetalk.audio.phones import Phones, PhoneRecogniser
from facetalk.audio.pitch import PitchTracker

SILENCE_DBFS = -50.0  # frames quieter than this are silence whatever the clip's level
DYNAMIC_RANGE_DB = 35.0  # loudness maps [peak - range, peak] to [0, 1]
SPEECH_BAND_HZ = (200.0, 4000.0)
HIGH_BAND_HZ = (2500.0, 7000.0)


@dataclass(frozen=True)
class Features:
    """Per-frame audio features at the video frame rate."""

    fps: float
    loudness: np.ndarray  # (T,) 0..1 speech-band loudness relative to the clip's peak
    level_db: np.ndarray  # (T,) speech-band level in dBFS
    brightness: np.ndarray  # (T,) share of high-band energy (fricatives, spread vowels), 0..1
    active: np.ndarray  # (T,) 0..1 voice activity (smoothed)
    phones: Phones | None = None  # timed phones, None where recognition was off or failed
    pitch_hz: np.ndarray | None = None  # (T,) fundamental frequency, 0 where unvoiced

    def __len__(self) -> int:
        return len(self.loudness)

    @property
    def duration(self) -> float:
        return len(self) / self.fps


class _FrameEnergies:
    """Accumulates band energies per video frame over a stream of audio chunks."""

    def __init__(self, rate: int, fps: float) -> None:
        self.rate, self.fps = rate, fps
        nyq = rate / 2
        hi = min(HIGH_BAND_HZ[1], nyq * 0.95)
        self.sos_speech = butter(4, [SPEECH_BAND_HZ[0] / nyq, min(SPEECH_BAND_HZ[1], nyq * 0.95) / nyq],
                                 btype="band", output="sos")
        self.sos_high = butter(4, [HIGH_BAND_HZ[0] / nyq, hi / nyq], btype="band", output="sos")
        self.zi_speech = sosfilt_zi(self.sos_speech) * 0.0
        self.zi_high = sosfilt_zi(self.sos_high) * 0.0
        self.offset = 0  # samples consumed so far
        self.next_frame = 0  # index of the first frame not yet measured
        self.carry_s = np.zeros(0)
        self.carry_h = np.zeros(0)
        self.pitch = PitchTracker(rate)
        self.raw = np.zeros(self.pitch.window)  # raw samples up to the end of what was pushed
        self.speech: list[np.ndarray] = []
        self.high: list[np.ndarray] = []
        self.f0: list[np.ndarray] = []

    def push(self, chunk: np.ndarray) -> None:
        if len(chunk) == 0:
            return
        x = chunk.astype(np.float64)
        s, self.zi_speech = sosfilt(self.sos_speech, x, zi=self.zi_speech)
        h, self.zi_high = sosfilt(self.sos_high, x, zi=self.zi_high)
        s = np.concatenate([self.carry_s, s])
        h = np.concatenate([self.carry_h, h])
        self.raw = np.concatenate([self.raw, x])
        start = self.offset - len(self.carry_s)
        raw_start = self.offset + len(chunk) - len(self.raw)
        end = start + len(s)
        bounds = []
        i = self.next_frame  # carried, not derived from sample positions: rounding would skip frames
        while True:
            b0 = round(i * self.rate / self.fps)
            b1 = round((i + 1) * self.rate / self.fps)
            if b1 > end:
                break
            bounds.append((b0 - start, b1 - start))
            i += 1
        if bounds:
            self.speech.append(np.array([np.mean(s[a:b] ** 2) if b > a else 0.0 for a, b in bounds]))
            self.high.append(np.array([np.mean(h[a:b] ** 2) if b > a else 0.0 for a, b in bounds]))
            ends = [b + start - raw_start for _, b in bounds]
            self.f0.append(np.array([self.pitch.f0(self.raw[max(0, e - self.pitch.window):e]) for e in ends]))
            keep_from = bounds[-1][1]
            self.next_frame = i
        else:
            keep_from = 0
        self.carry_s, self.carry_h = s[keep_from:], h[keep_from:]
        self.raw = self.raw[-(len(self.carry_s) + self.pitch.window):]
        self.offset += len(chunk)

    def finish(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Energies and f0 per frame; a final partial frame counts if at least half of it exists."""
        if len(self.carry_s) >= 0.5 * self.rate / self.fps:
            self.speech.append(np.array([np.mean(self.carry_s**2)]))
            self.high.append(np.array([np.mean(self.carry_h**2)]))
            self.f0.append(np.array([self.pitch.f0(self.raw)]))
        cat = lambda parts: np.concatenate(parts) if parts else np.zeros(0)  # noqa: E731
        return cat(self.speech), cat(self.high), cat(self.f0)


def _smooth(x: np.ndarray, frames: float) -> np.ndarray:
    if len(x) < 3 or frames <= 0:
        return x
    r = int(np.ceil(3 * frames))
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / frames) ** 2)
    k /= k.sum()
    return np.convolve(np.pad(x, r, mode="edge"), k, mode="valid")


def audio_features(chunks: Iterable[np.ndarray], rate: int, fps: float, phones: bool = True) -> Features:
    """Features from a stream of mono float32 chunks at `rate` Hz (16 kHz for phones)."""
    acc = _FrameEnergies(rate, fps)
    recogniser = PhoneRecogniser(rate) if phones and rate == 16000 else None
    for chunk in chunks:
        acc.push(chunk)
        if recogniser is not None:
            recogniser.push(chunk)
    speech, high, f0 = acc.finish()
    level = 10 * np.log10(speech + 1e-12)
    loud_frames = level[level > SILENCE_DBFS]
    peak = float(np.percentile(loud_frames, 95)) if len(loud_frames) else SILENCE_DBFS
    floor = max(peak - DYNAMIC_RANGE_DB, SILENCE_DBFS)
    loudness = np.clip((level - floor) / max(peak - floor, 1e-6), 0.0, 1.0)
    brightness = high / (high + speech + 1e-12)
    active = _smooth((loudness > 0.25).astype(np.float64), 0.15 * fps)
    f32 = lambda a: np.asarray(a, np.float32)  # noqa: E731
    return Features(float(fps), f32(loudness), f32(level), f32(brightness), f32(np.clip(active, 0, 1)),
                    recogniser.finish() if recogniser is not None else None,
                    f32(np.where(level > SILENCE_DBFS, f0, 0.0)))
