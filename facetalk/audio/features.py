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
ACTIVE_LOUDNESS = 0.25  # loudness above which a frame counts as voiced activity
ACTIVE_ATTACK_S, ACTIVE_RELEASE_S = 0.05, 0.2
PRIOR_PEAK_DBFS, PRIOR_PEAK_FRAMES = -14.0, 25  # a typical speech peak, worth a second of frames
PEAK_BIN_DB = 0.25
LIVE_PHONES_KEEP_S = 3.0  # phones older than this are dropped in a live stream (flat memory)


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

    def frames(self, start: int, stop: int) -> "Features":
        """Frames [start, stop); phones (timed in s from the stream's start) are kept whole."""
        cut = lambda a: None if a is None else a[start:stop]  # noqa: E731
        return Features(self.fps, self.loudness[start:stop], self.level_db[start:stop], self.brightness[start:stop],
                        self.active[start:stop], self.phones, cut(self.pitch_hz))

    def then(self, later: "Features") -> "Features":
        """These frames followed by `later`'s, with the later (more complete) phones."""
        cat = lambda a, b: None if a is None or b is None else np.concatenate([a, b])  # noqa: E731
        return Features(self.fps, *(np.concatenate([a, b]) for a, b in (
            (self.loudness, later.loudness), (self.level_db, later.level_db), (self.brightness, later.brightness),
            (self.active, later.active))), later.phones, cat(self.pitch_hz, later.pitch_hz))


_NONE = (np.zeros(0), np.zeros(0), np.zeros(0))


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

    def push(self, chunk: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Speech-band energy, high-band energy and f0 of the frames this chunk completes."""
        if len(chunk) == 0:
            return _NONE
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
        out = _NONE
        if bounds:
            ends = [b + start - raw_start for _, b in bounds]
            out = (np.array([np.mean(s[a:b] ** 2) if b > a else 0.0 for a, b in bounds]),
                   np.array([np.mean(h[a:b] ** 2) if b > a else 0.0 for a, b in bounds]),
                   np.array([self.pitch.f0(self.raw[max(0, e - self.pitch.window):e]) for e in ends]))
            keep_from = bounds[-1][1]
            self.next_frame = i
        else:
            keep_from = 0
        self.carry_s, self.carry_h = s[keep_from:], h[keep_from:]
        self.raw = self.raw[-(len(self.carry_s) + self.pitch.window):]
        self.offset += len(chunk)
        return out

    def silence(self) -> None:
        """The samples not yet in a frame become silence (the filters forget them too): the frame
        they fall in shows none of the sound a live session was told to drop."""
        self.carry_s = np.zeros_like(self.carry_s)
        self.carry_h = np.zeros_like(self.carry_h)
        self.raw = np.zeros_like(self.raw)
        self.zi_speech = self.zi_speech * 0.0
        self.zi_high = self.zi_high * 0.0

    def finish(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The final partial frame, if at least half of it exists."""
        if len(self.carry_s) >= 0.5 * self.rate / self.fps:
            return (np.array([np.mean(self.carry_s**2)]), np.array([np.mean(self.carry_h**2)]),
                    np.array([self.pitch.f0(self.raw)]))
        return _NONE


def loudness_of(level_db: np.ndarray, peak_db: float) -> np.ndarray:
    """0..1: the level within DYNAMIC_RANGE_DB below the speaker's peak (never below silence)."""
    floor = max(peak_db - DYNAMIC_RANGE_DB, SILENCE_DBFS)
    return np.clip((level_db - floor) / max(peak_db - floor, 1e-6), 0.0, 1.0)


def voice_activity(loudness: np.ndarray, fps: float, state: float = 0.0) -> tuple[np.ndarray, float]:
    """0..1 smoothed voice activity and the follower's state after it. Causal (it rises within
    ~50 ms of speech and falls ~200 ms after it), so the live stream and a file read the same."""
    speaking = (loudness > ACTIVE_LOUDNESS).astype(np.float64)
    out = np.empty(len(speaking))
    up, down = 1 - np.exp(-1 / (ACTIVE_ATTACK_S * fps)), 1 - np.exp(-1 / (ACTIVE_RELEASE_S * fps))
    y = state
    for i, v in enumerate(speaking):
        y += (up if v > y else down) * (v - y)
        out[i] = y
    return out, y


def _features(fps: float, level: np.ndarray, loudness: np.ndarray, high: np.ndarray, speech: np.ndarray,
              active: np.ndarray, f0: np.ndarray, phones: Phones | None) -> Features:
    f32 = lambda a: np.asarray(a, np.float32)  # noqa: E731
    return Features(float(fps), f32(loudness), f32(level), f32(high / (high + speech + 1e-12)), f32(active),
                    phones, f32(np.where(level > SILENCE_DBFS, f0, 0.0)))


def audio_features(chunks: Iterable[np.ndarray], rate: int, fps: float, phones: bool = True) -> Features:
    """Features of a whole clip from a stream of mono float32 chunks at `rate` Hz (16 kHz for
    phones). Loudness is relative to the whole clip's peak."""
    acc = _FrameEnergies(rate, fps)
    recogniser = PhoneRecogniser(rate) if phones and rate == 16000 else None
    parts = []
    for chunk in chunks:
        parts.append(acc.push(chunk))
        if recogniser is not None:
            recogniser.push(chunk)
    parts.append(acc.finish())
    speech, high, f0 = (np.concatenate(p) for p in zip(*parts))
    level = 10 * np.log10(speech + 1e-12)
    loudness = loudness_of(level, peak_level(level))
    active, _ = voice_activity(loudness, fps)
    return _features(fps, level, loudness, high, speech, active, f0,
                     recogniser.finish() if recogniser is not None else None)


def peak_level(level_db: np.ndarray) -> float:
    """The speaker's peak: the 95th percentile of the non-silent frames' level (dBFS)."""
    loud = level_db[level_db > SILENCE_DBFS]
    return float(np.percentile(loud, 95)) if len(loud) else SILENCE_DBFS


class FeatureStream:
    """Live features: `push` chunks of 16 kHz mono float audio, get the frames they complete.

    The same measures as `audio_features`, with what a stream cannot know replaced by a running
    estimate: loudness is relative to the peak heard so far (starting from a typical speech peak),
    and phones are the recogniser's best reading so far (the last ~50 ms not yet read).
    """

    def __init__(self, rate: int, fps: float, phones: bool = True) -> None:
        self.rate, self.fps = rate, fps
        self._energies = _FrameEnergies(rate, fps)
        self._recogniser = PhoneRecogniser(rate, keep_s=LIVE_PHONES_KEEP_S) if phones and rate == 16000 else None
        # running 95th percentile of the level: a histogram of the voiced frames heard so far, with
        # a typical speech peak standing in for the frames of the first second not yet heard
        self._hist = np.zeros(int((0 - SILENCE_DBFS) / PEAK_BIN_DB) + 1)
        self._heard = 0
        self._active = 0.0

    def _bin(self, level_db: float) -> int:
        return int(np.clip((level_db - SILENCE_DBFS) / PEAK_BIN_DB, 0, len(self._hist) - 1))

    def push(self, chunk: np.ndarray) -> Features:
        if self._recogniser is not None:
            self._recogniser.push(chunk)
        return self._frames(self._energies.push(chunk))

    def finish(self) -> Features:
        return self._frames(self._energies.finish())

    def interrupt(self) -> None:
        """Forget the sound pushed but not yet in a frame, and the voice activity it carried."""
        self._energies.silence()
        self._active = 0.0

    def _frames(self, energies: tuple[np.ndarray, np.ndarray, np.ndarray]) -> Features:
        speech, high, f0 = energies
        level = 10 * np.log10(speech + 1e-12)
        loudness = np.empty(len(level))
        for i, lv in enumerate(level):
            if lv > SILENCE_DBFS:
                self._hist[self._bin(lv)] += 1
                self._heard += 1
            cum = np.cumsum(self._hist)
            cum[self._bin(PRIOR_PEAK_DBFS):] += max(0, PRIOR_PEAK_FRAMES - self._heard)
            peak = SILENCE_DBFS + PEAK_BIN_DB * float(np.searchsorted(cum, 0.95 * cum[-1]))
            loudness[i] = loudness_of(lv, peak)
        active, self._active = voice_activity(loudness, self.fps, self._active)
        phones = self._recogniser.current() if self._recogniser is not None else None
        return _features(self.fps, level, loudness, high, speech, active, f0, phones)
