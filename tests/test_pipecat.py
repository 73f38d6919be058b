"""The avatar as a Pipecat video service, run through Pipecat's own test pipeline (run_test): TTS
audio in, every image out with its slice of that audio, listening frames in silences, interruptions.

Skipped where Pipecat is not installed (`pip install "facetalk[pipecat]"`; `make test` installs it).
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from facetalk.integrations.timeline import PlayoutClock

PACKAGE = Path(__file__).resolve().parents[1] / "facetalk"
TTS_RATE, FPS = 24000, 25.0
PER_FRAME = int(TTS_RATE / FPS)  # 960 samples of TTS audio per video frame


# -- the timeline (no Pipecat needed) --------------------------------------------------------------

def test_playout_clock_counts_frames_from_its_anchor() -> None:
    now = [100.0]
    clock = PlayoutClock(25.0, now=lambda: now[0])
    clock.anchor(10)
    assert clock.due() == 10 and clock.seconds_until(12) == pytest.approx(0.08)
    now[0] += 0.1
    assert clock.due() == 12 and clock.seconds_until(11) == 0.0


def test_without_pipecat_the_import_says_what_to_install() -> None:
    code = "import sys; sys.modules['pipecat'] = None\nimport facetalk.integrations.pipecat"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         cwd=PACKAGE.parent)
    assert out.returncode != 0
    assert 'pip install "facetalk[pipecat]"' in out.stderr.strip().splitlines()[-1]


# -- the service in a Pipecat pipeline ---------------------------------------------------------------

pipecat = pytest.importorskip("pipecat", reason='Pipecat not installed: pip install "facetalk[pipecat]"')

from pipecat.frames.frames import (EndWorkerFrame, InterruptionFrame, OutputImageRawFrame,  # noqa: E402
                                   ServiceUpdateSettingsFrame, TTSAudioRawFrame, TTSStartedFrame, TTSStoppedFrame)
from pipecat.pipeline.pipeline import Pipeline  # noqa: E402
from pipecat.pipeline.worker import PipelineParams  # noqa: E402
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor  # noqa: E402
from pipecat.tests.utils import run_test  # noqa: E402

from facetalk.api import Avatar  # noqa: E402
from facetalk.integrations.pipecat import FacetalkVideoService  # noqa: E402
from facetalk.media.audio import PcmResampler  # noqa: E402
from facetalk.motion.controls import Controls  # noqa: E402


@pytest.fixture(scope="module")
def avatar(rig, portrait: np.ndarray) -> Avatar:
    face = Avatar(rig, np.array(portrait))
    with face.stream() as session:  # first-use costs (phone models, JIT) paid here, not inside a timed run
        session.push(np.zeros(8000, np.float32))
    return face


def tts_speech(voice: np.ndarray, rate: int = TTS_RATE, seconds: float = 3.0) -> bytes:
    """The built-in voice as a TTS would send it: int16 at `rate`."""
    x = PcmResampler(16000, rate).feed(voice[: int(seconds * 16000)])
    return np.round(np.clip(x, -1, 1) * 32767).astype("<i2").tobytes()


@pytest.fixture(scope="module")
def speech24(voice: np.ndarray) -> bytes:
    return tts_speech(voice)


def tts_frames(pcm: bytes, rate: int = TTS_RATE) -> list[TTSAudioRawFrame]:
    """The speech in chunks of 20, 30 and 40 ms in turn, as streaming TTS services send it."""
    out, i = [], 0
    while i < len(pcm):
        n = 2 * (rate // 100) * (2 + len(out) % 3)
        out.append(TTSAudioRawFrame(pcm[i:i + n], rate, 1))
        i += n
    return out


def run(processor, frames: list, end: bool = True, rate: int = TTS_RATE) -> list:
    """The frames that came out, in order. end=False: the pipeline ends when a `Call` hangs up.
    rate: the pipeline's audio output rate (TTS services speak at it)."""
    test = run_test(processor, frames_to_send=frames, send_end_frame=end,
                    pipeline_params=PipelineParams(audio_out_sample_rate=rate))
    down, _ = asyncio.run(asyncio.wait_for(test, 60))
    return list(down)


class BargeIn(FrameProcessor):
    """Where the user aggregator stands (upstream of the avatar): interrupts when the user talks."""

    async def process_frame(self, frame, direction) -> None:
        await super().process_frame(frame, direction)
        await self.push_frame(frame, direction)


class Call(FrameProcessor):
    """The user's side of a call, below the avatar: after `talk_after` frames of the bot's speech the
    user talks over it (through `barge_in`); `hang_up_after` images later (counted from the
    interruption, after `heard` bytes of speech, or from the start) the call ends (EndWorkerFrame:
    the pipeline flushes and stops). Driven by the frames, not by timers."""

    def __init__(self, hang_up_after: int, talk_after: int | None = None, barge_in: BargeIn | None = None,
                 heard: int = 0) -> None:
        super().__init__()
        self._talk_after, self._hang_up_after, self._barge_in = talk_after, hang_up_after, barge_in
        self._heard = heard  # bytes of speech to hear before counting (without talking over it)
        self._listening = talk_after is None and heard == 0

    async def process_frame(self, frame, direction) -> None:
        await super().process_frame(frame, direction)
        await self.push_frame(frame, direction)
        if isinstance(frame, TTSAudioRawFrame) and self._heard > 0:
            self._heard -= len(frame.audio)
            self._listening = self._heard <= 0
        elif isinstance(frame, TTSAudioRawFrame) and self._talk_after is not None and not self._listening:
            self._talk_after -= 1
            if self._talk_after == 0:
                self._listening = True
                await self._barge_in.broadcast_interruption()
        elif isinstance(frame, OutputImageRawFrame) and self._listening:
            self._hang_up_after -= 1
            if self._hang_up_after == 0:
                await self.push_frame(EndWorkerFrame(), FrameDirection.UPSTREAM)


def images_with_audio(down: list) -> list[tuple[OutputImageRawFrame, TTSAudioRawFrame | None]]:
    """Each image with the audio frame right after it, if any."""
    out = []
    for i, f in enumerate(down):
        if isinstance(f, OutputImageRawFrame):
            nxt = down[i + 1] if i + 1 < len(down) else None
            out.append((f, nxt if isinstance(nxt, TTSAudioRawFrame) else None))
    return out


def pixels(image: OutputImageRawFrame) -> np.ndarray:
    w, h = image.size
    return np.frombuffer(image.image, np.uint8).reshape(h, w, 3)


def mouth_openings(images: list[OutputImageRawFrame]) -> np.ndarray:
    """Inner-lip gap over the eye-corner distance, from MediaPipe's landmarks of each image."""
    from facetalk.face.track import FaceTracker

    out = []
    with FaceTracker() as tracker:
        for image in images:
            lm = tracker.process(pixels(image))
            assert lm is not None, "no face found in an avatar frame"
            out.append(np.linalg.norm(lm[13, :2] - lm[14, :2]) / np.linalg.norm(lm[33, :2] - lm[263, :2]))
    return np.array(out)


@pytest.mark.parametrize("rate, fps, seconds", [(24000, 25.0, 3.0), (22050, 30.0, 2.0)])
def test_every_image_goes_out_with_its_slice_of_the_speech(avatar: Avatar, voice: np.ndarray, rate: int,
                                                           fps: float, seconds: float) -> None:
    speech = tts_speech(voice, rate, seconds)
    service = FacetalkVideoService(avatar, fps=fps, idle=False)
    down = run(service, [TTSStartedFrame(), *tts_frames(speech, rate), TTSStoppedFrame()], rate=rate)

    assert isinstance(down[0], TTSStartedFrame)
    stopped = next(i for i, f in enumerate(down) if isinstance(f, TTSStoppedFrame))
    pairs = images_with_audio(down[:stopped])
    assert all(isinstance(f, (OutputImageRawFrame, TTSAudioRawFrame)) for f in down[1:stopped])
    # One image per frame period, each followed by its 1/fps s of speech (the last one shorter).
    per_frame = int(rate / fps)
    assert len(pairs) == -(-len(speech) // (2 * per_frame)) and all(a is not None for _, a in pairs)
    audio = [a for _, a in pairs]
    assert all(a.sample_rate == rate and a.num_channels == 1 for a in audio)
    assert all(len(a.audio) == 2 * per_frame for a in audio[:-1])
    assert b"".join(a.audio for a in audio) == speech  # contiguous, in order, nothing lost or added
    assert not any(isinstance(f, TTSAudioRawFrame) for f in down[stopped:])
    # Images: 512² RGB, shown in step with the audio; the mouth moves with the speech.
    images = [im for im, _ in pairs]
    assert all(im.size == (512, 512) and im.format == "RGB" and len(im.image) == 512 * 512 * 3 for im in images)
    assert all(im.sync_with_audio for im in images)
    opening = mouth_openings(images)
    assert opening.max() - opening.min() > 0.08, opening.round(3)
    assert np.mean(np.diff(opening) != 0) > 0.5  # it keeps moving, not a few jumps


def test_a_tts_at_another_rate_is_converted_to_the_pipelines(avatar: Avatar, voice: np.ndarray) -> None:
    """A TTS set to 16 kHz stereo in a 24 kHz pipeline: the slices come at 24 kHz mono, one frame long."""
    speech = np.repeat(np.frombuffer(tts_speech(voice, 16000, 1.0), "<i2")[:, None], 2, axis=1).tobytes()
    chunks = [TTSAudioRawFrame(speech[i:i + 1280], 16000, 2) for i in range(0, len(speech), 1280)]
    down = run(FacetalkVideoService(avatar, fps=FPS, idle=False), [TTSStartedFrame(), *chunks, TTSStoppedFrame()])
    audio = [a for _, a in images_with_audio(down) if a is not None]
    assert all(a.sample_rate == TTS_RATE and a.num_channels == 1 for a in audio)
    assert all(len(a.audio) == 2 * PER_FRAME for a in audio[:-1])
    assert abs(sum(len(a.audio) for a in audio) // 2 - TTS_RATE) <= TTS_RATE // 500  # 1 s, within 2 ms


def test_listening_frames_while_the_bot_is_silent(avatar: Avatar) -> None:
    service = FacetalkVideoService(avatar, fps=FPS)
    t0 = time.monotonic()
    down = run(Pipeline([service, Call(hang_up_after=10)]), [], end=False)
    elapsed = time.monotonic() - t0
    images = [f for f in down if isinstance(f, OutputImageRawFrame)]
    assert not any(isinstance(f, TTSAudioRawFrame) for f in down)  # listening frames carry no sound
    assert len(images) >= 10  # the face does not freeze
    assert len(images) <= elapsed * FPS + 3  # paced like playback, not rendered ahead of it
    assert all(im.size == (512, 512) and im.sync_with_audio for im in images)
    assert len({im.image for im in images}) > 1  # it blinks and moves a little


def test_a_tts_that_stops_sending_mid_turn_still_gets_its_last_frames_out(avatar: Avatar, speech24: bytes) -> None:
    """No TTSStoppedFrame: once playback has caught up and 0.35 s more passed without audio, the
    turn is over; its last (held-back) frames go out with their audio and the face listens."""
    speech = speech24[: 2 * TTS_RATE]  # 1 s
    service = FacetalkVideoService(avatar, fps=FPS)
    down = run(Pipeline([service, Call(hang_up_after=5, heard=len(speech))]), [TTSStartedFrame(), *tts_frames(speech)],
               end=False)
    assert b"".join(f.audio for f in down if isinstance(f, TTSAudioRawFrame)) == speech
    last_audio = max(i for i, f in enumerate(down) if isinstance(f, TTSAudioRawFrame))
    assert sum(isinstance(f, OutputImageRawFrame) for f in down[last_audio:]) >= 5


def test_controls_change_through_a_settings_frame(avatar: Avatar, speech24: bytes) -> None:
    speech = [TTSStartedFrame(), *tts_frames(speech24[: 2 * TTS_RATE * 2]), TTSStoppedFrame()]
    plain = FacetalkVideoService(avatar, fps=FPS, idle=False, watermark=False)
    happy = FacetalkVideoService(avatar, fps=FPS, idle=False, watermark=False)
    update = ServiceUpdateSettingsFrame(delta=FacetalkVideoService.Settings(controls=Controls(emotion="happy:1")),
                                        service=happy)
    a = [im for im, _ in images_with_audio(run(plain, speech))]
    b = [im for im, _ in images_with_audio(run(happy, [update, *speech]))]
    assert happy.settings.controls.emotion == "happy:1" and plain.settings.controls.emotion == "neutral"
    assert len(a) == len(b)
    assert a[0].image == b[0].image  # the change blends in from the next frame on
    late = np.abs(pixels(a[-5]).astype(int) - pixels(b[-5]).astype(int)).mean()
    assert late > 1.0  # a smile, well after the 0.3 s ramp



def test_an_interruption_drops_the_queued_speech_and_closes_the_mouth(avatar: Avatar, speech24: bytes) -> None:
    service = FacetalkVideoService(avatar, fps=FPS)
    barge_in = BargeIn()
    call = Call(hang_up_after=12, talk_after=12, barge_in=barge_in)
    down = run(Pipeline([barge_in, service, call]), [TTSStartedFrame(), *tts_frames(speech24), TTSStoppedFrame()],
               end=False)

    cut = next(i for i, f in enumerate(down) if isinstance(f, InterruptionFrame))
    before, after = down[:cut], down[cut + 1:]
    spoken = b"".join(f.audio for f in before if isinstance(f, TTSAudioRawFrame))
    assert speech24.startswith(spoken) and 12 * 2 * PER_FRAME <= len(spoken) < len(speech24) // 2
    assert not any(isinstance(f, (TTSAudioRawFrame, TTSStoppedFrame)) for f in after)  # the rest is dropped
    listening = [f for f in after if isinstance(f, OutputImageRawFrame)]
    assert len(listening) >= 12  # the face goes on
    # The mouth: closing at once (Session.interrupt makes the held-back frames silent; without it they
    # would still speak), shut from the third frame on (80 ms; frame k shows t = k/fps).
    opening = mouth_openings([im for im, a in images_with_audio(before) if a is not None])
    closing = mouth_openings(listening)
    assert opening[-1] > 0.05  # it was cut off with its mouth open
    assert closing[:2].mean() < 0.6 * opening[-1], (opening[-1].round(3), closing.round(3))
    assert closing[2:].max() < 0.03, closing.round(3)
