"""Speech cut at the session's frame boundaries, each frame returned with its own sound (no framework)."""

from __future__ import annotations

import numpy as np
import pytest

from facetalk.errors import FacetalkError
from facetalk.integrations.speech_frames import SpeechFrames, SpokenFrame
from facetalk.media.audio import PcmResampler
from facetalk.stream.session import Session


def tts(voice: np.ndarray, rate: int, seconds: float, channels: int = 1) -> np.ndarray:
    """The built-in voice at `rate` as int16 (n, channels): what an agent's TTS sends."""
    r = PcmResampler(16000, rate)
    x = np.concatenate([r.feed(np.array(voice[: int(seconds * 16000)])), r.flush()])
    pcm = np.round(np.clip(x, -1, 1) * 32767).astype(np.int16)
    return np.repeat(pcm[:, None], channels, axis=1)


def feed(frames: SpeechFrames, pcm: np.ndarray, chunk: int) -> list[SpokenFrame]:
    out = []
    for i in range(0, len(pcm), chunk):
        out += frames.speak(pcm[i:i + chunk])
    return out + frames.end_speech()


@pytest.mark.parametrize("rate, fps, chunk", [(22050, 30.0, 331), (44100, 25.0, 1000), (16000, 25.0, 160)])
def test_the_speech_comes_back_whole_cut_at_the_frame_boundaries(rig, voice: np.ndarray, rate: int, fps: float,
                                                                  chunk: int) -> None:
    pcm = tts(voice, rate, 1.0, channels=2)
    frames = SpeechFrames(Session(rig, fps=fps), rate, channels=2)
    out = feed(frames, pcm, chunk)
    assert [s.frame.index for s in out] == list(range(len(out)))
    spoken = [s for s in out if s.speech is not None]
    assert spoken == out[: len(spoken)]  # speech first, then the silence that flushed its last frame
    assert np.array_equal(np.concatenate([s.speech for s in spoken]), pcm)
    bounds = [round(k * rate / fps) for k in range(len(spoken) + 1)]
    assert [len(s.speech) for s in spoken[:-1]] == list(np.diff(bounds)[:-1])
    assert 0 < len(spoken[-1].speech) <= bounds[-1] - bounds[-2]
    assert not frames.speaking


def test_listening_frames_carry_no_sound_and_speech_waits_for_a_whole_frame(rig, voice: np.ndarray) -> None:
    frames = SpeechFrames(Session(rig, fps=25.0), 24000)
    quiet = frames.listen() + frames.listen() + frames.listen()
    assert [(s.frame.index, s.speech) for s in quiet] == [(0, None), (1, None)]  # one held back
    pcm = tts(voice, 24000, 0.5)[:, 0]
    assert frames.speak(pcm[:500]) == []  # short of the 960 samples of a frame
    out = frames.speak(pcm[500:960 + 960])
    assert [(s.frame.index, s.speech is None) for s in out] == [(2, True), (3, False)]
    assert np.array_equal(out[1].speech[:, 0], pcm[:960])


def test_an_interruption_silences_the_held_back_frames_and_the_clock_runs_on(rig, voice: np.ndarray) -> None:
    frames = SpeechFrames(Session(rig, fps=25.0), 24000)
    pcm = tts(voice, 24000, 1.0)
    shown = frames.speak(pcm[: 10 * 960 + 500])  # frames 0..8 out, 9 held back, half of 10 waiting
    assert [s.frame.index for s in shown] == list(range(9)) and frames.speaking
    frames.interrupt()
    assert not frames.speaking
    after = frames.listen() + frames.listen()
    assert [(s.frame.index, s.speech) for s in after] == [(9, None), (10, None)]
    assert after[0].frame.time == pytest.approx(9 / 25.0)
    again = feed(frames, pcm[:960 * 3], 480)  # a new utterance starts on a fresh frame
    assert [s.frame.index for s in again][:3] == [11, 12, 13]
    assert np.array_equal(np.concatenate([s.speech for s in again if s.speech is not None]), pcm[:960 * 3])


def test_speech_of_the_wrong_shape_is_a_clear_error(rig) -> None:
    frames = SpeechFrames(Session(rig, fps=25.0), 24000, channels=2)
    with pytest.raises(FacetalkError, match=r"expected int16 speech of shape \(n, 2\), got \(10,\) int16"):
        frames.speak(np.zeros(10, np.int16))
    with pytest.raises(FacetalkError, match="float32"):
        frames.speak(np.zeros((10, 2), np.float32))


def test_the_core_never_imports_the_integrations() -> None:
    """integrations/ sits on top: the frameworks' extras stay optional for everything else."""
    import ast
    from pathlib import Path

    package = Path(__file__).resolve().parents[1] / "facetalk"
    bad = []
    for path in package.rglob("*.py"):
        if "integrations" in path.relative_to(package).parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            names += [f"{n}.{a.name}" for n in names if n == "facetalk" for a in getattr(node, "names", [])]
            bad += [f"{path.relative_to(package)} imports {n}" for n in names if n.startswith("facetalk.integrations")]
    assert not bad, "\n".join(bad)
