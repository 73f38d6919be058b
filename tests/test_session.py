"""The live session: PCM in, frames out, one frame behind the audio; alike to a file render."""

from __future__ import annotations

import numpy as np
import pytest

from facetalk.audio.features import FeatureStream, audio_features
from facetalk.audio.phones import PhoneRecogniser
from facetalk.errors import FacetalkError
from facetalk.motion.controls import Controls
from facetalk.motion.generate import MotionGenerator, generate
from facetalk.motion.track import MotionTrack
from facetalk.safety.marks import Marks
from facetalk.stream.session import LiveFrame, Session, as_pcm

RATE, FPS = 16000, 25.0


@pytest.fixture(scope="module")
def speech(voice: np.ndarray) -> np.ndarray:
    return np.array(voice[: 3 * RATE])


def stream(session: Session, audio: np.ndarray, chunk: int) -> list[LiveFrame]:
    out = []
    for i in range(0, len(audio), chunk):
        out += session.push(audio[i:i + chunk])
    return out + session.close()


def test_frames_come_out_one_frame_behind_the_audio(rig, speech: np.ndarray) -> None:
    session = Session(rig, fps=FPS)
    per_frame = RATE // 25
    assert session.push(speech[:per_frame]) == []  # frame 0 waits for the audio of frame 1
    got = session.push(speech[per_frame:2 * per_frame])
    assert [f.index for f in got] == [0]
    got = session.push(speech[2 * per_frame:5 * per_frame])
    assert [f.index for f in got] == [1, 2, 3]
    rest = stream(session, speech[5 * per_frame:], 777)
    frames = got + rest
    assert [f.index for f in frames] == list(range(1, 75))
    assert all(f.time == pytest.approx(f.index / FPS) for f in frames)
    assert all(f.image.shape == (512, 512, 3) and f.image.dtype == np.uint8 for f in frames)


def test_bytes_int16_and_float_input_give_the_same_frames(rig, speech: np.ndarray) -> None:
    pcm16 = np.round(speech * 32767).astype(np.int16)
    marks = Marks.new()  # the same watermark id for all three
    a = stream(Session(rig, marks=marks), pcm16, 640)
    b = stream(Session(rig, marks=marks), pcm16.astype("<i2").tobytes(), 1280)  # bytes: 640 samples a chunk
    c = stream(Session(rig, marks=marks), pcm16.astype(np.float32) / 32768.0, 640)
    assert len(a) == len(b) == len(c) == 75
    for x, y, z in zip(a, b, c):
        assert np.array_equal(x.image, y.image) and np.array_equal(x.image, z.image)


def test_callback_gets_every_frame(rig, speech: np.ndarray) -> None:
    seen: list[int] = []
    frames = stream(Session(rig, on_frame=lambda f: seen.append(f.index)), speech[: RATE], 500)
    assert seen == [f.index for f in frames] == list(range(25))


def test_a_control_change_blends_in_from_where_it_is_made(rig, speech: np.ndarray) -> None:
    marks = Marks.new()
    plain, steered = Session(rig, marks=marks), Session(rig, marks=marks)
    a, b = [], []
    for i in range(0, len(speech), 400):
        if i == len(speech) // 2:  # 1.5 s in
            steered.set_controls(Controls(distance=0.7, gaze=(20.0, 0.0)))
        a += plain.push(speech[i:i + 400])
        b += steered.push(speech[i:i + 400])
    a, b = a + plain.close(), b + steered.close()
    assert len(a) == len(b) == 75
    diff = np.array([np.abs(x.image.astype(int) - y.image.astype(int)).mean() for x, y in zip(a, b)])
    changed_at = next(i for i, d in enumerate(diff) if d > 0)
    assert changed_at == 37  # from the frames not yet made when the change came (1.5 s less the lookahead)
    ramp = diff[changed_at:changed_at + 8]
    assert np.all(np.diff(ramp) > 0) and diff[-10:].min() > 3 * ramp[0]  # blended in over ~0.3 s, not snapped


def test_a_closed_session_refuses_audio(rig, speech: np.ndarray) -> None:
    session = Session(rig)
    stream(session, speech[:RATE], 800)
    with pytest.raises(FacetalkError, match="closed"):
        session.push(speech[:100])
    assert session.close() == []


@pytest.mark.parametrize("bad, message", [
    (b"\x00\x01\x02", "even number of bytes"),
    (np.zeros((10, 2), np.float32), "mono"),
    (np.zeros(10, np.int32), "int16 or float"),
])
def test_bad_pcm_is_a_clear_error(bad: object, message: str) -> None:
    with pytest.raises(FacetalkError, match=message):
        as_pcm(bad)


def test_live_motion_is_alike_to_the_file_render(voice: np.ndarray) -> None:
    """The stream's features are running estimates (peak loudness, phones read so far), so the
    motion is not identical to the file's; it must be alike: same head and brows, same mouth
    rhythm."""
    x = np.array(voice)
    offline = generate(audio_features([x], RATE, FPS), Controls(seed=3))
    features, motion = FeatureStream(RATE, FPS), MotionGenerator(Controls(seed=3), FPS)
    parts = [motion.push(features.push(x[i:i + 320])) for i in range(0, len(x), 320)]
    live = MotionTrack.concat(parts + [motion.push(features.finish()), motion.finish()])
    assert len(live) == len(offline)
    r = lambda name: np.corrcoef(offline.column(name), live.column(name))[0, 1]  # noqa: E731
    assert r("yaw") > 0.98 and r("pitch") > 0.98 and r("browInnerUp") > 0.9
    # The mouth follows the phones, which a stream reads as they come (settling ~50 ms late) and a
    # file knows whole; the fitted loudness gain leaves only a fifth of the opening to the
    # loudness, which both know alike (tools/fit_motion.py: real lips follow the phones).
    assert r("jawOpen") > 0.6
    # The stream's phones change as the recogniser revises them, so its jaw is a little jumpier.
    assert live.column("jawOpen").std() == pytest.approx(offline.column("jawOpen").std(), rel=0.45)


def test_live_phones_stay_bounded_on_a_long_stream(voice: np.ndarray) -> None:
    rec = PhoneRecogniser(RATE, keep_s=3.0)
    x = np.tile(np.array(voice), 5)  # ~65 s
    for i in range(0, len(x), 1600):
        rec.push(x[i:i + 1600])
    phones = rec.current()
    assert len(phones) > 5
    assert phones.starts.min() > len(x) / RATE - 45  # older utterances were dropped


def test_a_stream_looks_like_the_file_render_of_the_same_audio(rig, portrait, speech: np.ndarray, wav_writer) -> None:
    from facetalk.api import Avatar

    avatar = Avatar(rig, np.array(portrait))
    offline = list(avatar.speak(wav_writer("speech.wav", speech), Controls(seed=5), watermark=False))
    live = stream(avatar.stream(Controls(seed=5), watermark=False), speech, 320)
    assert len(live) == len(offline) == 75
    diff = [np.abs(a.astype(int) - b.image.astype(int)).mean() for a, b in zip(offline, live)]
    assert np.mean(diff) < 3.0 and max(diff) < 8.0  # grey levels of 255: the same head, eyes and brows


@pytest.mark.parametrize("gain", [1.0, 0.1, 0.02])
def test_live_loudness_learns_the_speakers_level(voice: np.ndarray, gain: float) -> None:
    """Loudness is relative to the peak heard so far (a quiet microphone must still open the mouth):
    after the first two seconds it reads about as the whole clip's."""
    x = gain * np.array(voice[: 4 * RATE])
    live = FeatureStream(RATE, FPS)
    got = np.concatenate([live.push(x[i:i + 320]).loudness for i in range(0, len(x), 320)])
    whole = audio_features([x], RATE, FPS, phones=False).loudness[: len(got)]
    assert np.abs(got[50:] - whole[50:]).mean() < 0.06


def test_every_live_frame_carries_the_sessions_watermark(rig, speech: np.ndarray) -> None:
    from facetalk.safety.detect import detect

    session = Session(rig)
    found = detect(f.image for f in stream(session, speech, 640))
    assert found.found and found.payload is not None and found.payload.hex_id == session.marks.watermark_id
    unmarked = detect(f.image for f in stream(Session(rig, marks=Marks(None)), speech, 640))
    assert not unmarked.found and unmarked.payload is None
