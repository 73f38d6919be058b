"""The avatar as a LiveKit Agents video generator: agent speech in, talking-face video out.

LiveKit's `AvatarRunner` reads the agent's speech from an `AudioReceiver` (e.g.
`DataStreamAudioReceiver`), pushes it into a `VideoGenerator` and publishes what the generator
yields through an `rtc.AVSynchronizer`: video frames, the audio each one shows, and an
`AudioSegmentEnd` when an utterance has been played out (the runner then tells the agent playback
finished). This module is that generator.

    avatar = Avatar.from_image("me.jpg")
    video_gen = FacetalkVideoGenerator(avatar, fps=25, sample_rate=24000)
    runner = AvatarRunner(room, audio_recv=DataStreamAudioReceiver(room),
                          video_gen=video_gen, options=video_gen.options)
    await runner.start()

Speech is rendered as it is played out, not as it arrives (agents send it faster than real time),
so an interruption (`clear_buffer`) drops everything not yet played and the mouth closes at once.
While the agent is silent the generator yields listening frames at the frame rate, so the video
never freezes. Rendering runs in a worker thread, never on the event loop.

Requires the extra: pip install "facetalk[livekit]".
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING

import numpy as np

try:
    from livekit import rtc
    from livekit.agents.voice.avatar import AudioSegmentEnd, AvatarOptions, VideoGenerator
except ImportError as e:  # pragma: no cover - depends on the environment
    raise ImportError('facetalk.integrations.livekit needs LiveKit Agents: pip install "facetalk[livekit]"') from e

from facetalk.integrations.speech_frames import SpeechFrames
from facetalk.integrations.timeline import PlayoutClock
from facetalk.motion.controls import Controls, ControlTrack

if TYPE_CHECKING:
    from facetalk.api import Avatar
    from facetalk.stream.session import Session

# Listening frames may be made this far ahead of the wall clock, so the synchroniser always has the
# next one in hand; more would only delay the first spoken frame behind queued listening ones.
IDLE_LEAD_S = 0.04
# Fell further behind than this (an overloaded CPU), the frame clock restarts from now rather
# than rushing out the missed listening frames (AVSynchronizer gives up at 300 ms too).
MAX_LAG_S = 0.3

Output = rtc.VideoFrame | rtc.AudioFrame | AudioSegmentEnd


class FrameClock:
    """When the next frame is due: one every 1/fps s of wall time from the first handed out.

    Spoken frames come as fast as the runner takes them (the synchroniser paces them); listening
    frames wait for this clock, so silence is rendered in real time and starts when the speech
    before it has been played out, not when it was rendered.
    """

    def __init__(self, fps: float, now: Callable[[], float] = time.monotonic) -> None:
        self._playout = PlayoutClock(fps, now)
        self._frames = 0  # handed out

    def wait(self) -> float:
        """Seconds until a listening frame may be made (<= 0: now)."""
        if not self._frames:
            return 0.0  # nothing handed out yet: the first frame is due now
        if (self._playout.due() - self._frames) / self._playout.fps > MAX_LAG_S:
            self._playout.anchor(self._frames)
        return self._playout.seconds_until(self._frames) - IDLE_LEAD_S

    def tick(self) -> None:
        """A frame was handed out."""
        if not self._frames:
            self._playout.anchor(0)
        self._frames += 1


class FacetalkVideoGenerator(VideoGenerator):
    """A `VideoGenerator` for `AvatarRunner`: speech at any rate in, frames of the avatar out.

    Yields, in order, for each frame: an RGBA `rtc.VideoFrame` (size², the avatar's crop) and,
    when the frame shows speech, an `rtc.AudioFrame` with exactly that speech (at `sample_rate`,
    `channels`; speech already in that format passes through bit for bit). After the last frame
    of an utterance comes the `AudioSegmentEnd` the runner turns into "playback finished".
    Listening frames (no audio) fill the silences at `fps`.

    Args:
        avatar: the portrait, analysed once; any number of generators can share it.
        fps: video frame rate (1..60).
        sample_rate, channels: what the runner publishes (`options`); use the agent's TTS rate so
            the speech is not resampled on the way.
        controls, watermark, label: as for `Avatar.stream`.
    """

    def __init__(self, avatar: Avatar, *, fps: float = 25.0, sample_rate: int = 24000, channels: int = 1,
                 controls: Controls | ControlTrack = Controls(), watermark: bool = True, label: bool = False) -> None:
        session = avatar.stream(controls, fps=fps, watermark=watermark, label=label)
        self.options = AvatarOptions(video_width=avatar.rig.size, video_height=avatar.rig.size, video_fps=fps,
                                     audio_sample_rate=sample_rate, audio_channels=channels)
        self._frames = SpeechFrames(session, sample_rate, channels)
        self._clock = FrameClock(fps)
        # speech waiting to be rendered, each with the epoch it arrived in; clear_buffer bumps the
        # epoch, so speech of an older one is never shown, wherever it is on its way out
        self._inbox: asyncio.Queue[tuple[int, rtc.AudioFrame | AudioSegmentEnd]] = asyncio.Queue()
        self._epoch = 0
        self._resampler: tuple[int, rtc.AudioResampler] | None = None  # (input rate, resampler)
        self._interrupted = False  # the session is told between two renders, never during one
        self._controls: Controls | None = None  # applied between two renders too
        self._session_lock = threading.Lock()  # a render still running when aclose() is called

    @property
    def session(self) -> Session:
        """The live session behind the frames (its watermark id, frame counts)."""
        return self._frames.session

    async def push_audio(self, frame: rtc.AudioFrame | AudioSegmentEnd) -> None:
        """Agent speech (any rate and channel count), or the end of an utterance."""
        if isinstance(frame, AudioSegmentEnd):
            if self._resampler is not None:
                self._put(*self._resampler[1].flush())
                self._resampler = None
            self._put(frame)
            return
        frame = _remixed(frame, self.options.audio_channels)
        rate = self.options.audio_sample_rate
        if frame.sample_rate == rate:
            self._put(frame)
            return
        if self._resampler is None or self._resampler[0] != frame.sample_rate:
            self._resampler = (frame.sample_rate, rtc.AudioResampler(
                frame.sample_rate, rate, num_channels=self.options.audio_channels))
        self._put(*self._resampler[1].push(frame))

    def clear_buffer(self) -> None:
        """The agent was interrupted: drop all speech not yet yielded; the mouth closes within
        ~100 ms and the face glides back to listening."""
        self._epoch += 1
        self._interrupted = True
        self._resampler = None
        while not self._inbox.empty():
            self._inbox.get_nowait()

    def set_controls(self, controls: Controls) -> None:
        """Gaze, distance, emotion... from the next frame on (blended in, see Session.set_controls)."""
        self._controls = controls

    def __aiter__(self) -> AsyncIterator[Output]:
        return self._stream()

    async def aclose(self) -> None:
        """Close the session (AvatarRunner never closes its generator: call this after the runner)."""
        def close() -> None:
            with self._session_lock:
                self._frames.session.close()

        await asyncio.to_thread(close)

    def _put(self, *items: rtc.AudioFrame | AudioSegmentEnd) -> None:
        for item in items:
            self._inbox.put_nowait((self._epoch, item))

    async def _stream(self) -> AsyncIterator[Output]:
        while True:
            epoch, item = await self._next_input()
            interrupt, self._interrupted = self._interrupted, False
            controls, self._controls = self._controls, None
            rendered = await asyncio.to_thread(self._render, item, interrupt, controls)
            for video, speech in rendered:
                if speech is not None and epoch != self._epoch:
                    continue  # cleared while it was being rendered or waiting to be taken
                self._clock.tick()
                yield video
                if speech is not None:
                    yield _audio_frame(speech, self.options.audio_sample_rate)
            if isinstance(item, AudioSegmentEnd) and epoch == self._epoch:
                yield item

    async def _next_input(self) -> tuple[int, rtc.AudioFrame | AudioSegmentEnd | None]:
        """The next speech or end of utterance; None when a listening frame is due first (or the
        session has an interruption to hear of)."""
        if self._interrupted:
            return self._epoch, None
        if not self._inbox.empty():
            return self._inbox.get_nowait()
        wait = self._clock.wait()
        if wait > 0:
            try:
                return await asyncio.wait_for(self._inbox.get(), wait)
            except asyncio.TimeoutError:
                pass
        return self._epoch, None

    def _render(self, item: rtc.AudioFrame | AudioSegmentEnd | None, interrupt: bool,
                controls: Controls | None) -> list[tuple[rtc.VideoFrame, np.ndarray | None]]:
        """In the worker thread, the one place the session is touched: the frames this item
        completes, ready to go (video frame, the speech it shows or None)."""
        with self._session_lock:
            if interrupt:
                self._frames.interrupt()
            if controls is not None:
                self._frames.session.set_controls(controls)
            if isinstance(item, AudioSegmentEnd):
                spoken = self._frames.end_speech()
            elif item is None:
                spoken = self._frames.listen()
            else:
                spoken = self._frames.speak(np.frombuffer(item.data, np.int16).reshape(-1, item.num_channels))
        return [(_video_frame(s.frame.image), s.speech) for s in spoken]


def _remixed(frame: rtc.AudioFrame, channels: int) -> rtc.AudioFrame:
    """The frame with `channels` channels (their mean, copied to each); LiveKit's resampler keeps
    the channel count, so this comes first."""
    if frame.num_channels == channels:
        return frame
    x = np.frombuffer(frame.data, np.int16).reshape(-1, frame.num_channels)
    mono = np.round(x.mean(axis=1)).astype(np.int16)
    return _audio_frame(np.repeat(mono[:, None], channels, axis=1), frame.sample_rate)


def _video_frame(rgb: np.ndarray) -> rtc.VideoFrame:
    h, w, _ = rgb.shape
    rgba = np.empty((h, w, 4), np.uint8)
    rgba[..., :3] = rgb
    rgba[..., 3] = 255
    return rtc.VideoFrame(w, h, rtc.VideoBufferType.RGBA, rgba.tobytes())


def _audio_frame(pcm: np.ndarray, rate: int) -> rtc.AudioFrame:
    pcm = np.ascontiguousarray(pcm, np.int16)
    return rtc.AudioFrame(pcm.tobytes(), rate, pcm.shape[1], pcm.shape[0])
