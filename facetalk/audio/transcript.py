"""Speech + the words it says -> timed phones, by forced alignment (pocketsphinx, CMUdict).

The phone recogniser (`phones.py`) guesses: on GRID's "set blue with E five now" it hears
"T S EH UW D UW IY F AY UW AW M", no B, no W, so the lips never shut on "blue" or round on "with".
Aligned to its transcript the same sound gives S EH T B L UW W IH DH IY F AY V N AW, each phone
within a frame or two of where the real speaker's lips make it. A voice agent always has the text
(the TTS was given it), and so does anyone reading a script: `--text` uses it.

English only (the dictionary's words); the alignment (two passes: the words, then the phones
within them) takes ~0.15 s per second of audio, the phone recogniser it replaces 0.035. Where
pocketsphinx cannot align the sound to the words (a wrong transcript, or a quirk of its second,
phone-level pass), the caller falls back to the recogniser.
"""

from __future__ import annotations

import os
import re
from functools import cache

import numpy as np

from facetalk.audio.phones import FRAME_S, Phones, _label
from facetalk.errors import FacetalkError

DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


@cache
def _dictionary() -> frozenset[str]:
    """The words CMUdict (shipped in pocketsphinx's wheel) can pronounce."""
    from pocketsphinx import get_model_path

    path = os.path.join(get_model_path(), "en-us", "cmudict-en-us.dict")
    with open(path, encoding="utf-8", errors="replace") as f:
        return frozenset(line.split(" ", 1)[0].split("(", 1)[0] for line in f if line.strip())


def words_of(text: str) -> list[str]:
    """The transcript as dictionary words: lower case, punctuation dropped, each digit spelt out.
    A word the dictionary does not have is the user's to respell (FacetalkError)."""
    words = []
    for token in re.findall(r"[a-z']+|[0-9]", text.lower()):  # "E5" is "e five"
        token = token.strip("'")
        if token:
            words.append(DIGITS[int(token)] if token.isdigit() else token)
    known = _dictionary()
    for w in words:
        if w not in known:
            raise FacetalkError(f"--text: {w!r} is not in the pronouncing dictionary (CMUdict); "
                                "write it as it sounds, or leave --text out")
    if not words:
        raise FacetalkError("--text has no words; give the words the voice says, or leave --text out")
    return words


def align_phones(samples: np.ndarray, text: str, rate: int = 16000) -> Phones | None:
    """Phones of `samples` (mono float, 16 kHz) aligned to `text`; None where it does not align."""
    from pocketsphinx import Decoder, get_model_path

    words = words_of(text)
    if rate != 16000 or len(samples) < rate // 10:
        return None
    model = get_model_path()
    decoder = Decoder(hmm=os.path.join(model, "en-us", "en-us"), dict=os.path.join(model, "en-us", "cmudict-en-us.dict"),
                      samprate=float(rate), loglevel="FATAL")
    pcm = np.round(np.clip(samples, -1.0, 1.0) * 32767).astype("<i2").tobytes()
    try:
        decoder.set_align_text(" ".join(words))
        if not _decode(decoder, pcm, words):  # the words' times first,
            return None
        decoder.set_alignment()  # then the phones within them, in a second pass (whose hyp()
        decoder.start_utt()  # must not be asked for: where that pass found no path, it crashes)
        decoder.process_raw(pcm, False, True)
        decoder.end_utt()
        alignment = decoder.get_alignment()
        if alignment is None:
            return None
        labels, times = [], []
        for word in alignment:
            for phone in word:
                labels.append(_label(phone.name))
                times.append((phone.start * FRAME_S, (phone.start + phone.duration) * FRAME_S))
    except RuntimeError:  # "Failed to stop utterance processing": a pass that found no path
        return None
    if not labels:
        return None
    t = np.asarray(times, np.float64)
    return Phones(tuple(labels), t[:, 0], t[:, 1])


def _decode(decoder, pcm: bytes, words: list[str]) -> bool:
    """One pass over the whole utterance; whether it aligned every word (it can stop early on a
    long utterance without saying so)."""
    decoder.start_utt()
    decoder.process_raw(pcm, False, True)
    decoder.end_utt()
    hyp = decoder.hyp()
    return hyp is not None and [w.split("(", 1)[0] for w in hyp.hypstr.split()] == words
