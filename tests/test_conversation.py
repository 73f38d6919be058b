"""Conversation behaviour of a live session: a listening face in silence, interruptions that close
the mouth at once and glide, turns that blend, and flat memory over long idling."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from facetalk.api import Avatar
from facetalk.audio.features import FeatureStream
from facetalk.audio.phones import Phones, silence_between
from facetalk.media.audio import SAMPLE_RATE, read_audio
from facetalk.motion.controls import Controls
from facetalk.motion.generate import MotionGenerator
from facetalk.motion.track import EXPRESSIONS, MotionTrack
from facetalk.stream.session import Session

FPS = 25
CHUNK = SAMPLE_RATE // 50  # 20 ms, as a microphone or a TTS delivers it


@pytest.fixture(scope="module")
def avatar(portrait_path) -> Avatar:
    return Avatar.from_image(portrait_path)


@pytest.fixture(scope="module")
def speech(voice_path) -> np.ndarray:
    return read_audio(voice_path)


def _motion(audio: np.ndarray, seed: int = 0) -> MotionTrack:
    fs, gen = FeatureStream(SAMPLE_RATE, FPS), MotionGenerator(Controls(seed=seed), FPS)
    parts = [gen.push(fs.push(audio[i:i + SAMPLE_RATE])) for i in range(0, len(audio), SAMPLE_RATE)]
    return MotionTrack.concat(parts + [gen.push(fs.finish()), gen.finish()])


def _push(session: Session, audio: np.ndarray) -> list:
    return [f for i in range(0, len(audio), CHUNK) for f in session.push(audio[i:i + CHUNK])]


def _jaw(frames) -> np.ndarray:
    return np.array([f.motion.expression[EXPRESSIONS.index("jawOpen")] for f in frames])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_silent_session_listens_rather_than_freezes(seed):
    track = _motion(np.zeros(SAMPLE_RATE * 60, np.float32), seed)
    after = slice(3 * FPS, None)  # once the listening has faded in
    yaw, pitch = track.column("yaw")[after], track.column("pitch")[after]
    assert 0.4 < yaw.std() < 2.5  # a listener's small motion: neither a photo nor a talker's sweeps
    assert pitch.min() < -1.5  # at least one nod in a minute (about one every seven seconds)
    assert track.column("eyeBlinkL").max() > 0.8  # still blinking
    assert track.column("mouthSmileL").max() > 0.1  # and a brief smile now and then
    assert np.abs(track.column("jawOpen")).max() < 0.02  # the mouth stays shut
    assert np.abs(np.diff(yaw)).max() < 0.5  # degrees per frame: glides, never jumps


def test_listening_gives_way_to_speech_without_a_snap(speech):
    audio = np.concatenate([np.zeros(SAMPLE_RATE * 8, np.float32), speech])
    track = _motion(audio)
    start = 8 * FPS
    for angle in ("yaw", "pitch", "roll"):
        c = track.column(angle)
        step_at_turn = np.abs(np.diff(c[start - FPS:start + FPS])).max()
        step_in_speech = np.abs(np.diff(c[start + FPS:])).max()
        assert step_at_turn <= max(step_in_speech, 0.5), angle
    # the mouth moves with the new speech as it would have without the listening before it
    assert track.column("jawOpen")[start:].max() > 0.3


def test_silence_between_reads_dropped_sound_as_silence():
    p = Phones(("AA", "M", "IY"), np.array([0.0, 0.2, 0.4]), np.array([0.2, 0.4, 0.6]))
    q = silence_between(p, 0.3, 0.5)
    assert q.labels == ("AA", "M", "SIL", "IY")
    assert np.allclose(q.starts, [0.0, 0.2, 0.3, 0.5]) and np.allclose(q.ends, [0.2, 0.3, 0.5, 0.6])
    assert silence_between(p, 0.5, 0.5) is p


def _steps(frames) -> np.ndarray:
    """Mean absolute grey-level change from each frame to the next."""
    images = np.stack([f.image for f in frames]).astype(np.int16)
    return np.abs(np.diff(images, axis=0)).mean(axis=(1, 2, 3))


@pytest.fixture(scope="module")
def talking_steps(avatar, speech) -> np.ndarray:
    """How much the face changes from frame to frame in ordinary talk, uninterrupted."""
    session = avatar.stream()
    return _steps(_push(session, speech) + session.close())


@pytest.mark.parametrize("cut_s", [1.9, 2.62, 3.3])
def test_interrupt_closes_the_mouth_within_100_ms_and_glides(avatar, speech, talking_steps, cut_s):
    session = avatar.stream()
    n = int(cut_s * SAMPLE_RATE)
    before = _push(session, speech[:n])
    assert _jaw(before)[-15:].max() > 0.2  # mid-sentence, mouth moving
    session.interrupt()
    after = _push(session, np.zeros(SAMPLE_RATE, np.float32))
    frames = before + after
    assert [f.index for f in frames] == list(range(len(frames)))  # the clock runs on
    jaw = _jaw(frames)
    times = np.array([f.time for f in frames])
    assert jaw[times >= cut_s + 0.1].max() < 0.05  # shut within 100 ms of the interruption
    # no snap: the face changes no more from frame to frame across the cut than in ordinary talk
    k = len(before)
    assert _steps(frames)[k - 1:k + 5].max() <= talking_steps.max()


def test_speech_after_an_interrupt_moves_the_lips_again(avatar, speech):
    session = avatar.stream()
    _push(session, speech[: int(1.5 * SAMPLE_RATE)])
    session.interrupt()
    _push(session, np.zeros(SAMPLE_RATE // 2, np.float32))
    again = _push(session, speech[: int(2.5 * SAMPLE_RATE)])
    assert _jaw(again).max() > 0.3


def test_interrupt_on_a_closed_or_fresh_session_is_harmless(avatar):
    session = avatar.stream()
    session.interrupt()  # nothing pushed yet
    assert len(_push(session, np.zeros(SAMPLE_RATE // 5, np.float32))) >= 4
    session.close()
    session.interrupt()


def test_idle_listening_memory_is_flat():
    """Ten minutes of silence (motion and features only: rendering holds no per-frame state)."""
    fs, gen = FeatureStream(SAMPLE_RATE, FPS), MotionGenerator(Controls(), FPS)
    silence = np.zeros(SAMPLE_RATE, np.float32)

    def minutes(m: int) -> None:
        for _ in range(60 * m):
            gen.push(fs.push(silence))

    minutes(1)
    tracemalloc.start()
    minutes(1)
    first, _ = tracemalloc.get_traced_memory()
    minutes(8)
    last, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert last - first < 200_000  # bytes over eight more minutes: no per-frame growth
