"""The avatar as a Pipecat video service: TTS audio in, talking-face frames out, each with its audio.

    from facetalk.integrations.pipecat import FacetalkVideoService

    avatar = FacetalkVideoService("me.jpg")            # or an Avatar, + controls=, fps=
    pipeline = Pipeline([transport.input(), stt, user_agg, llm, tts, avatar, transport.output(),
                         assistant_agg])
    # transport: video_out_enabled=True, video_out_width=512, video_out_height=512,
    #            video_out_framerate=25 (= fps)

Like Pipecat's own avatar services (Simli, HeyGen, Tavus) it takes the `TTSAudioRawFrame`s, does
not pass them on, and emits `OutputImageRawFrame`s together with the audio they show. Output
transports pace images on their own clock and share no timestamps with the audio, so every image
is marked `sync_with_audio` and followed by its slice of the speech (a `TTSAudioRawFrame` cut at
the session's frame boundaries by `SpeechFrames`, at the pipeline's output rate, which is the
TTS's own in practice; never resampled back from 16 kHz): the transport shows image i once the
audio before it has played, and drops both together on an interruption.

What the service does besides (see `FacetalkVideoService`): it renders in a worker thread, keeps
the face alive with listening frames while the bot is silent (silence pushed at the pace of
playback), ends a turn on `TTSStoppedFrame` (or when the TTS stalls), handles `InterruptionFrame`
(`Session.interrupt`: the mouth closes, queued speech is dropped), and takes control changes
(emotion, gaze...) from `ServiceUpdateSettingsFrame(delta=FacetalkVideoService.Settings(...))` or
`set_controls`. Other frames pass through in their order relative to the speech.
"""

from __future__ import annotations

import asyncio
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

try:
    from pipecat.frames.frames import (CancelFrame, EndFrame, Frame, InterruptionFrame, OutputImageRawFrame,
                                       ServiceUpdateSettingsFrame, StartFrame, SystemFrame, TTSAudioRawFrame,
                                       TTSStoppedFrame)
    from pipecat.processors.frame_processor import FrameDirection, FrameProcessorSetup
    from pipecat.services.ai_service import AIService
    from pipecat.services.settings import ServiceSettings
    from pipecat.utils.types import NOT_GIVEN, NotGiven
except ModuleNotFoundError as e:  # pragma: no cover - depends on the environment
    raise ModuleNotFoundError(f'facetalk.integrations.pipecat needs Pipecat ({e.name} is missing): '
                              f'pip install "facetalk[pipecat]"') from e

from facetalk.api import Avatar
from facetalk.integrations.speech_frames import SpeechFrames, SpokenFrame
from facetalk.integrations.timeline import PlayoutClock
from facetalk.media.audio import SAMPLE_RATE, PcmResampler
from facetalk.motion.controls import Controls
from facetalk.stream.session import Session

LOOKAHEAD_FRAMES = 1  # the session shows frame i once the audio of frame i + 1 is in (stream.session)
STALL_S = 0.35  # a turn whose audio runs this far behind playback has ended (Pipecat's BOT_VAD_STOP_SECS)
MAX_IDLE_CATCH_UP_S = 0.2  # idle silence further behind than this restarts the clock instead of a burst
WARM_S = 0.4  # faint noise through a throw-away session at start: first-use costs (~1.5 s) not on the first words


@dataclass
class FacetalkVideoSettings(ServiceSettings):
    """Settings changeable while the pipeline runs: the avatar's `Controls` (blended in over
    stream.session.CONTROL_RAMP_S)."""

    controls: Controls | NotGiven = field(default_factory=lambda: NOT_GIVEN)


@dataclass(frozen=True)
class _Speech:
    frame: TTSAudioRawFrame


@dataclass(frozen=True)
class _Forward:
    """A frame that must stay behind the speech queued before it (text, turn ends...)."""

    frame: Frame
    direction: FrameDirection


@dataclass(frozen=True)
class _SetControls:
    controls: Controls


class _Finish:
    """EndFrame: render what is queued, flush the session, stop."""


_Item = _Speech | _Forward | _SetControls | _Finish


class FacetalkVideoService(AIService):
    """A talking face for a Pipecat pipeline: put it after the TTS service, before the output.

    Args:
        avatar: an `Avatar`, or a portrait path (analysed once, ~0.3 s).
        controls: the avatar's initial `Controls` (emotion, gaze, distance, seed...).
        fps: frames per second; set the transport's `video_out_framerate` to the same.
        idle: keep the face alive (listening: blinks, small motion) while the bot is silent.
        watermark, label: as `Avatar.stream` (every frame carries the invisible mark by default).
        settings: a `FacetalkVideoService.Settings` (its `controls` wins over `controls`).
        **kwargs: passed to `AIService` (name, ...).
    """

    Settings = FacetalkVideoSettings
    _settings: FacetalkVideoSettings

    def __init__(self, avatar: Avatar | str | os.PathLike[str], *, controls: Controls = Controls(),
                 fps: float = 25.0, idle: bool = True, watermark: bool = True, label: bool = False,
                 settings: FacetalkVideoSettings | None = None, **kwargs: Any) -> None:
        store = FacetalkVideoSettings(model=None, controls=controls)
        if settings is not None:
            store.apply_update(settings)
        super().__init__(settings=store, **kwargs)
        self._avatar = avatar if isinstance(avatar, Avatar) else Avatar.from_image(avatar)
        self._fps = fps
        self._idle = idle
        self._marks = (watermark, label)
        self._rate = 0  # the pipeline's output rate (setup): the speech is cut and sent back at it
        self._session: Session | None = None
        self._speech: SpeechFrames | None = None  # the session, fed one frame of sound at a time
        self._converters: dict[tuple[int, int], PcmResampler] = {}  # TTS audio at another rate -> _rate
        self._executor: ThreadPoolExecutor | None = None
        self._queue: asyncio.Queue[_Item] = asyncio.Queue()
        self._pump_task: asyncio.Task | None = None
        self._clock = PlayoutClock(fps)
        self._context_id: str | None = None
        self._stopping = False
        self._finished = asyncio.Event()

    @property
    def fps(self) -> float:
        return self._fps

    @property
    def session(self) -> Session | None:
        """The live session while the pipeline runs (read-only use: its `marks`, `frames_out`)."""
        return self._session

    async def set_controls(self, controls: Controls) -> None:
        """Change the controls from the next frame rendered after the speech queued so far."""
        await self._update_settings(FacetalkVideoSettings(controls=controls))

    # -- lifecycle ---------------------------------------------------------------------------

    async def setup(self, setup: FrameProcessorSetup) -> None:
        await super().setup(setup)
        self._rate = setup.audio_out_sample_rate

    async def start(self, frame: StartFrame) -> None:
        await super().start(frame)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="facetalk-render")
        watermark, label = self._marks
        self._session = self._avatar.stream(self._settings.controls, fps=self._fps, watermark=watermark,
                                            label=label)
        self._speech = SpeechFrames(self._session, self._rate)
        self._executor.submit(self._warm_up)  # runs before any push: the worker takes one job at a time

    async def stop(self, frame: EndFrame) -> None:
        """Render and send everything queued (the last words, the held-back frame), then stop."""
        await super().stop(frame)
        if self._pump_task is not None:
            self._stopping = True
            await self._queue.put(_Finish())
            await self._finished.wait()  # an interruption meanwhile restarts the pump, _Finish kept
        await self._cancel_pump()
        self._shutdown()

    async def cancel(self, frame: CancelFrame) -> None:
        await super().cancel(frame)
        await self._cancel_pump()
        self._shutdown()

    async def cleanup(self) -> None:
        await super().cleanup()
        await self._cancel_pump()
        self._shutdown()

    def _shutdown(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None
        self._session = self._speech = None  # a render still running in the worker finishes unseen

    async def _update_settings(self, delta: ServiceSettings) -> dict[str, Any]:
        changed = await super()._update_settings(delta)
        if "controls" in changed:
            await self._queue.put(_SetControls(self._settings.controls))
        return changed

    # -- frames ------------------------------------------------------------------------------

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, InterruptionFrame):  # from upstream (the user spoke) or a broadcast below
            try:
                await self._interrupt()
            finally:  # whatever happened, the face goes on; its next frames follow the interruption
                await self.push_frame(frame, direction)
                self._start_pump()
        elif direction == FrameDirection.UPSTREAM:
            await self.push_frame(frame, direction)
        elif isinstance(frame, StartFrame):
            await self.push_frame(frame, direction)  # downstream sees StartFrame before any image
            self._start_pump()
        elif isinstance(frame, TTSAudioRawFrame):
            await self._queue.put(_Speech(frame))
        elif isinstance(frame, ServiceUpdateSettingsFrame) and self._is_for_me(frame):
            await self._update_settings(frame.delta)
        elif isinstance(frame, (SystemFrame, EndFrame)):
            await self.push_frame(frame, direction)  # EndFrame: stop() has sent everything before it
        else:
            await self._queue.put(_Forward(frame, direction))

    def _is_for_me(self, frame: ServiceUpdateSettingsFrame) -> bool:
        return (frame.service is None or frame.service is self) and isinstance(frame.delta, FacetalkVideoSettings)

    # -- the pump: one task owns the session's timeline ---------------------------------------

    async def _pump(self) -> None:
        """Feeds the session in order: queued speech as fast as it renders, silence at the pace
        of playback while nobody speaks; sends each frame with its audio."""
        self._clock.anchor(self._pushed_frames())
        while True:
            try:  # queued work first: a clock that ran ahead of a busy CPU is no stall
                item = self._queue.get_nowait()
            except asyncio.QueueEmpty:
                try:
                    item = await asyncio.wait_for(self._queue.get(), self._wait_s())
                except TimeoutError:
                    await self._on_time()
                    continue
            if isinstance(item, _Finish):
                await self._emit(await self._run(self._finish))
                self._finished.set()
                return
            try:
                await self._handle(item)
            except Exception as e:  # one bad frame must not freeze the face for the rest of the call
                await self.push_error(error_msg=f"{self}: error rendering the avatar: {e}", exception=e)

    async def _handle(self, item: _Item) -> None:
        if isinstance(item, _Speech):
            await self._on_speech(item.frame)
        elif isinstance(item, _SetControls):
            await self._run(self._session_set_controls, item.controls)
        elif isinstance(item, _Forward):
            if isinstance(item.frame, TTSStoppedFrame):
                await self._emit(await self._run(self._end_speech))
            await self.push_frame(item.frame, item.direction)

    def _speaking(self) -> bool:
        return self._speech is not None and self._speech.speaking

    def _wait_s(self) -> float | None:
        """How long the pump may wait for more speech before it must act on time."""
        if self._speaking():  # until the turn has stalled
            return self._clock.seconds_until(self._pushed_frames() + round(STALL_S * self._fps))
        if not self._idle:
            return None
        return self._clock.seconds_until(self._pushed_frames() - LOOKAHEAD_FRAMES)

    async def _on_time(self) -> None:
        if self._speaking():
            await self._emit(await self._run(self._end_speech))  # the TTS stalled: the turn is over
        if not self._idle:
            return
        behind = self._clock.due() + LOOKAHEAD_FRAMES + 1 - self._pushed_frames()
        if behind > round(MAX_IDLE_CATCH_UP_S * self._fps):
            self._clock.anchor(self._pushed_frames() - LOOKAHEAD_FRAMES - 1)  # lagged (busy CPU): no burst
            behind = 1
        if behind > 0:
            await self._emit(await self._run(self._listen, behind))

    async def _on_speech(self, frame: TTSAudioRawFrame) -> None:
        if not self._speaking() and self._clock.due() > self._pushed_frames():
            self._clock.anchor(self._pushed_frames())  # nothing queued in the transport: this plays now
        self._context_id = frame.context_id
        await self._emit(await self._run(self._speak, frame.audio, frame.sample_rate, frame.num_channels))

    async def _emit(self, frames: list[SpokenFrame]) -> None:
        """Each image, then the speech it shows (none for listening frames)."""
        for spoken in frames:
            f = spoken.frame
            h, w = f.image.shape[:2]
            image = OutputImageRawFrame(image=f.image.tobytes(), size=(w, h), format="RGB")
            image.sync_with_audio = True  # shown once the audio before it has played
            await self.push_frame(image)
            if spoken.speech is not None:
                await self.push_frame(TTSAudioRawFrame(audio=spoken.speech.tobytes(), sample_rate=self._rate,
                                                       num_channels=1, context_id=self._context_id))

    def _pushed_frames(self) -> int:
        """Whole frames of sound in the session so far."""
        return 0 if self._session is None else round(self._session.samples * self._fps / SAMPLE_RATE)

    # -- interruptions ---------------------------------------------------------------------------

    async def _interrupt(self) -> None:
        """Drop the queued speech and what the session holds; the face returns to listening."""
        await self._cancel_pump()
        kept: list[_Item] = []
        while not self._queue.empty():
            item = self._queue.get_nowait()
            if isinstance(item, _SetControls) or (isinstance(item, _Forward) and not item.frame.interruptible):
                kept.append(item)
        if self._stopping:
            kept.append(_Finish())  # the EndFrame waits for the pump to finish
        for item in kept:
            self._queue.put_nowait(item)
        if self._speech is not None:
            await self._run(self._speech_interrupt)

    def _start_pump(self) -> None:
        """(Re)start feeding the session; the clock restarts: whatever the transport held is gone."""
        if self._pump_task is None and self._session is not None:
            self._pump_task = self.create_task(self._pump())

    async def _cancel_pump(self) -> None:
        if self._pump_task is not None:
            await self.cancel_task(self._pump_task)
            self._pump_task = None

    # -- the worker thread: every session call runs there, one at a time, in order ---------------

    async def _run(self, fn: Any, *args: Any) -> Any:
        if self._executor is None:
            raise RuntimeError(f"{self} is not running (no StartFrame yet, or stopped)")
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    def _warm_up(self) -> None:
        noise = np.random.default_rng(0).standard_normal(int(WARM_S * SAMPLE_RATE)) * 1e-3
        with self._avatar.stream(fps=self._fps, watermark=False) as session:
            session.push(noise.astype(np.float32))

    def _speak(self, audio: bytes, rate: int, channels: int) -> list[SpokenFrame]:
        if self._speech is None:
            return []
        pcm = np.frombuffer(audio, "<i2").reshape(-1, channels)
        if (rate, channels) != (self._rate, 1):  # a TTS at another rate than the pipeline's output
            converter = self._converters.setdefault((rate, channels), PcmResampler(rate, self._rate))
            mono = converter.feed(pcm.mean(axis=1) / 32768.0)
            pcm = np.round(np.clip(mono, -1, 1) * 32767).astype(np.int16)
        return self._speech.speak(pcm.reshape(-1, 1))

    def _end_speech(self) -> list[SpokenFrame]:
        """The turn is over: its last sound (a converter's tail too) and frames go out."""
        if self._speech is None:
            return []
        out = []
        for converter in self._converters.values():
            tail = converter.flush()
            out += self._speech.speak(np.round(np.clip(tail, -1, 1) * 32767).astype(np.int16).reshape(-1, 1))
        self._converters.clear()
        return out + self._speech.end_speech()

    def _listen(self, frames: int) -> list[SpokenFrame]:
        return [] if self._speech is None else [s for _ in range(frames) for s in self._speech.listen()]

    def _finish(self) -> list[SpokenFrame]:
        if self._speech is None or self._session is None or self._session.closed:
            return []
        return self._end_speech() + self._speech.close()

    def _session_set_controls(self, controls: Controls) -> None:
        if self._session is not None:
            self._session.set_controls(controls)

    def _speech_interrupt(self) -> None:
        self._converters.clear()  # the rest of that turn's sound is gone, its filter state with it
        if self._speech is not None and not self._session.closed:
            self._speech.interrupt()  # the session's clock runs on: the frames held back show silence
