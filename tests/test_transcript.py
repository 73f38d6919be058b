"""Forced alignment of a voice to its words (`generate --text`): the words as the dictionary spells
them, the phones placed in time where the voice says them, a clear error for a word it lacks."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from facetalk.audio.transcript import align_phones, words_of
from facetalk.errors import FacetalkError
from facetalk.media.audio import read_audio

ROOT = Path(__file__).resolve().parents[1]
# what tools/make_demo_voice.sh had espeak-ng say into facetalk/assets/voice.wav
DEMO_TEXT = (ROOT / "facetalk" / "assets" / "voice.txt").read_text(encoding="utf-8").strip()


def test_the_words_are_normalised_as_the_dictionary_spells_them() -> None:
    assert words_of("Set BLUE, with E5 now!") == ["set", "blue", "with", "e", "five", "now"]
    assert words_of("don't  stop") == ["don't", "stop"]


@pytest.mark.parametrize("text, fragment", [("hello qzxwv", "qzxwv"), ("?!", "no words")])
def test_a_word_the_dictionary_lacks_is_a_clear_error(text: str, fragment: str) -> None:
    with pytest.raises(FacetalkError, match=fragment):
        words_of(text)


def test_the_demo_voice_aligns_to_its_words(voice_path: Path) -> None:
    samples = read_audio(voice_path, rate=16000)
    phones = align_phones(samples, DEMO_TEXT)
    assert phones is not None
    speech = [p for p in phones.labels if p != "SIL"]
    # every phone of every word, in order: "made" M EY D, "back" B AE K, "pause" P AO Z ...
    assert speech[:4] == ["HH", "AH", "L", "OW"] and speech[-4:] == ["K", "L", "IH", "R"]
    assert sum(p in ("M", "B", "P") for p in speech) == 11  # am made from clip my lips move pause back speaking calm
    assert np.all(np.diff(phones.starts) >= 0) and np.all(phones.ends > phones.starts)
    assert phones.ends[-1] <= len(samples) / 16000 + 0.02
    m = [s for label, s in zip(phones.labels, phones.starts) if label == "M"]
    assert 0.9 < m[0] < 1.4  # "I am": about a second in, after "Hello!" and its pause


def test_a_transcript_that_does_not_cover_the_voice_falls_back_to_the_phones_heard(voice_path: Path) -> None:
    """Five words for 13 s of speech "align" (pocketsphinx squeezes them in and calls the rest
    silence): the words must cover the voiced frames, or the recognised phones are used, with a note."""
    from facetalk.pipeline import features_for

    features, notes = features_for(voice_path, 25.0, "Hello! I am a talking face")
    assert len(notes) == 1 and "did not align" in notes[0]
    assert len(features.phones) > 60  # the recogniser's reading of the whole clip
    features, notes = features_for(voice_path, 25.0, DEMO_TEXT)
    assert notes == [] and sum(p == "M" for p in features.phones.labels) == 6  # am made from my move calm


def test_sound_too_short_to_align_falls_back() -> None:
    assert align_phones(np.zeros(800), "hello") is None


def test_grid_file_names_spell_their_sentence(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(ROOT / "tools"))
    import grid_transcripts

    assert grid_transcripts.sentence("bbaf2n") == "bin blue at f two now"
    assert grid_transcripts.sentence("pwij3p") == "place white in j three please"
    sys.modules.pop("grid_transcripts", None)
