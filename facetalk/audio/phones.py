"""Speech -> timed phones, with pocketsphinx's English phone recogniser used as an acoustic alphabet.

The recogniser runs without a dictionary or words (`allphone` mode), so it labels any language and
singing with the nearest English phones: the labels are noisy, the timing and the vowel/consonant
and open/closed distinctions are what the mouth needs. Its model ships inside the wheel.
Settings from ../shared/FACTS.md (0.035 s per second of audio on this machine).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

UTTERANCE_S = 20.0  # the decoder is restarted at a quiet chunk after this long (flat memory)
MAX_UTTERANCE_S = 40.0  # ... and anyway after this long
FRAME_S = 0.01  # pocketsphinx's frame


@dataclass(frozen=True)
class Phones:
    """Phone segments in time order: label (CMU ARPAbet, SIL, or SPN for noise), start and end in s."""

    labels: tuple[str, ...]
    starts: np.ndarray  # (N,) s
    ends: np.ndarray  # (N,) s

    def __len__(self) -> int:
        return len(self.labels)


def silence_between(phones: Phones, t0: float, t1: float) -> Phones:
    """The same phones with [t0, t1) read as silence: sound a live session was told to drop
    (an interruption) must not move the lips, whatever the recogniser made of it."""
    if t1 <= t0 or not len(phones):
        return phones
    labels, starts, ends = [], [], []
    for label, a, b in zip(phones.labels, phones.starts, phones.ends):
        for lo, hi, lab in ((a, min(b, t0), label), (max(a, t0), min(b, t1), "SIL"), (max(a, t1), b, label)):
            if hi <= lo:
                continue
            if lab == "SIL" and labels and labels[-1] == "SIL" and ends[-1] >= lo:
                ends[-1] = hi  # one silence, not one per phone it covers
            else:
                labels.append(lab)
                starts.append(lo)
                ends.append(hi)
    return Phones(tuple(labels), np.asarray(starts, np.float64), np.asarray(ends, np.float64))


class PhoneRecogniser:
    """Streaming phone recognition: `push` 16 kHz mono float chunks, then `finish`."""

    def __init__(self, rate: int = 16000, keep_s: float | None = None) -> None:
        """keep_s: forget phones that ended more than this long ago (a live stream's flat memory);
        None keeps them all."""
        from pocketsphinx import Decoder, get_model_path

        model = get_model_path()
        self.rate = rate
        self.keep_s = keep_s
        self._decoder = Decoder(hmm=os.path.join(model, "en-us", "en-us"),
                                allphone=os.path.join(model, "en-us", "en-us-phone.lm.bin"),
                                lw=2.0, pip=0.3, beam=1e-20, pbeam=1e-20, samprate=float(rate), loglevel="FATAL")
        self._utt_start = 0  # samples
        self._utt_len = 0
        self._labels: list[str] = []
        self._times: list[tuple[float, float]] = []
        self._decoder.start_utt()

    def push(self, chunk: np.ndarray) -> None:
        if len(chunk) == 0:
            return
        pcm = np.round(np.clip(chunk, -1.0, 1.0) * 32767).astype("<i2")
        self._decoder.process_raw(pcm.tobytes(), False, False)
        self._utt_len += len(chunk)
        seconds = self._utt_len / self.rate
        quiet = float(np.sqrt(np.mean(np.square(chunk[-self.rate // 10:])))) < 0.003
        if seconds > MAX_UTTERANCE_S or (seconds > UTTERANCE_S and quiet):
            self._end_utterance()
            self._decoder.start_utt()

    def _end_utterance(self) -> None:
        self._decoder.end_utt()
        offset = self._utt_start / self.rate
        for seg in self._decoder.seg() or ():  # None for an utterance with no audio
            self._labels.append(seg.word)
            self._times.append((offset + seg.start_frame * FRAME_S, offset + (seg.end_frame + 1) * FRAME_S))
        self._utt_start += self._utt_len
        self._utt_len = 0
        if self.keep_s is not None:
            horizon = self._utt_start / self.rate - self.keep_s
            old = next((k for k, (_, end) in enumerate(self._times) if end >= horizon), len(self._times))
            del self._labels[:old], self._times[:old]

    def current(self) -> Phones:
        """The best reading so far, with the utterance in progress read as far as the decoder has
        got (it settles ~50 ms behind the audio; its last phone may still change)."""
        offset = self._utt_start / self.rate
        partial = [(seg.word, offset + seg.start_frame * FRAME_S, offset + (seg.end_frame + 1) * FRAME_S)
                   for seg in (self._decoder.seg() or ()) if self._utt_len]
        return _phones(self._labels + [w for w, _, _ in partial], self._times + [(a, b) for _, a, b in partial])

    def finish(self) -> Phones:
        self._end_utterance()
        return _phones(self._labels, self._times)


def _phones(words: list[str], times: list[tuple[float, float]]) -> Phones:
    t = np.asarray(times, np.float64).reshape(-1, 2)
    return Phones(tuple(_label(w) for w in words), t[:, 0], t[:, 1])


def _label(word: str) -> str:
    """ARPAbet phone, SIL for silence, SPN for sound the model calls noise (often voice it cannot
    name: singing, laughter, other languages)."""
    if word in ("<s>", "</s>", "<sil>", "SIL"):
        return "SIL"
    return "SPN" if word.startswith("+") else word.upper()


def recognise_phones(samples: np.ndarray, rate: int = 16000, chunk_s: float = 1.0) -> Phones:
    """Phones of a whole clip (mono float samples)."""
    rec = PhoneRecogniser(rate)
    step = max(1, int(chunk_s * rate))
    for i in range(0, len(samples), step):
        rec.push(samples[i:i + step])
    return rec.finish()
