"""A live session: 16 kHz mono PCM in, chunk by chunk, rendered frames out as soon as they can be.

The same stages as a file render (features -> motion -> renderer), run causally: a frame is made
once the audio of the frame after it has arrived (motion.generate.LOOKAHEAD_FRAMES), so the
latency from sound in to frame out is one frame (40 ms at 25 fps) plus the work. What a stream
cannot know ahead, the loudness of the whole clip and its final phones, is estimated as it goes;
motion, seeds and controls are otherwise those of `Avatar.render_to` on the same audio.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from facetalk.audio.features import FeatureStream
from facetalk.errors import FacetalkError
from facetalk.face.rig import FaceRig
from facetalk.media.audio import SAMPLE_RATE
from facetalk.motion.controls import Controls, ControlTrack
from facetalk.motion.generate import MotionGenerator
from facetalk.motion.track import Motion, MotionTrack
from facetalk.render.renderer import Renderer
from facetalk.safety.marks import Marks

CONTROL_RAMP_S = 0.3  # a control changed mid-stream blends in over this long


@dataclass(frozen=True)
class LiveFrame:
    index: int
    time: float  # s from the stream's start: the frame shows the sound of [time, time + 1/fps)
    image: np.ndarray  # RGB uint8, size x size
    motion: Motion | None = None  # what the frame shows (pose, expression), for measuring and syncing


FrameCallback = Callable[[LiveFrame], None]
KeepFrame = Callable[[int, bool], bool]  # (frame index, newest of this push) -> render it?


def as_pcm(chunk: np.ndarray | bytes | bytearray | memoryview) -> np.ndarray:
    """Mono float32 in [-1, 1] from int16 samples (array or little-endian bytes) or floats."""
    if isinstance(chunk, (bytes, bytearray, memoryview)):
        if len(chunk) % 2:
            raise FacetalkError("PCM bytes must be 16-bit little-endian samples (an even number of bytes)")
        return np.frombuffer(chunk, "<i2").astype(np.float32) / 32768.0
    x = np.asarray(chunk)
    if x.ndim == 2 and x.shape[1] == 1:
        x = x[:, 0]
    if x.ndim != 1:
        raise FacetalkError(f"PCM must be mono: a 1-D array of samples, got shape {x.shape}")
    if x.dtype == np.int16:
        return x.astype(np.float32) / 32768.0
    if not np.issubdtype(x.dtype, np.floating):
        raise FacetalkError(f"PCM must be int16 or float samples, got {x.dtype}")
    return np.clip(np.nan_to_num(x.astype(np.float32)), -1.0, 1.0)


class Int16Bytes:
    """int16 little-endian PCM bytes in messages of any length -> float samples: an odd byte at the
    end of one message is kept and completes the first sample of the next."""

    def __init__(self) -> None:
        self._odd = b""

    def feed(self, data: bytes | bytearray | memoryview) -> np.ndarray:
        data = self._odd + bytes(data)
        cut = len(data) & ~1
        self._odd = data[cut:]
        return as_pcm(data[:cut])


class Session:
    """`push` PCM at 16 kHz (any chunk size), get the frames it completes; `close` flushes the rest.

    int16 bytes may be split anywhere, even inside a sample (the odd byte waits for the next push).
    A server short of time passes `keep` to `push`: frames it declines are not rendered (their
    motion is still made, so every frame after is the same as without dropping) and are counted in
    `dropped`; the frames returned keep their own index and time. Frames also go to `on_frame` if
    given. Controls change with `set_controls` and blend in over
    CONTROL_RAMP_S. Every frame carries `marks` (default: the watermark with a fresh id for this
    session). Not thread-safe: one caller at a time (sessions are independent of each other).
    """

    def __init__(self, rig: FaceRig, controls: Controls | ControlTrack = Controls(), fps: float = 25.0,
                 on_frame: FrameCallback | None = None, marks: Marks | None = None) -> None:
        if not 1 <= fps <= 60:
            raise FacetalkError(f"a live session runs at 1..60 fps, got {fps}")
        self.fps = fps
        self.on_frame = on_frame
        self.marks = Marks.new() if marks is None else marks
        self._features = FeatureStream(SAMPLE_RATE, fps)
        self._motion = MotionGenerator(controls, fps)
        self._renderer = Renderer(rig)
        self._target = ControlTrack.of(controls).keys[-1][1]
        self._next = 0
        self._bytes = Int16Bytes()
        self.samples = 0  # pushed so far
        self.dropped = 0  # frames declined by `keep`
        self.closed = False

    @property
    def frames_out(self) -> int:
        return self._next

    def push(self, pcm: np.ndarray | bytes | bytearray | memoryview, keep: KeepFrame | None = None) -> list[LiveFrame]:
        """The frames this audio completes (those `keep(index, newest)` declines are skipped)."""
        if self.closed:
            raise FacetalkError("this live session is closed; start a new one")
        x = self._bytes.feed(pcm) if isinstance(pcm, (bytes, bytearray, memoryview)) else as_pcm(pcm)
        self.samples += len(x)
        return self._render(self._motion.push(self._features.push(x)), keep)

    def set_controls(self, controls: Controls) -> None:
        """From the next frame on, blend from the current controls to `controls`."""
        now = self._motion.frame / self.fps
        self._motion.controls = ControlTrack(((now, self._target), (now + CONTROL_RAMP_S, controls)))
        self._target = controls

    def interrupt(self) -> None:
        """Drop the sound pushed but not yet shown (a user talking over the avatar, a transport's
        clear-buffer): the frames still held back show silence, the mouth closes within about two
        frames, and the face glides on into listening as the silence goes on. Keep pushing (silence
        while nobody speaks): the stream's clock runs on, so frames keep their times."""
        if self.closed:
            return
        self._features.interrupt()
        self._motion.interrupt(self.samples / SAMPLE_RATE)

    def close(self) -> list[LiveFrame]:
        """The frames still held back (the last one waits for audio after it), then the end."""
        if self.closed:
            return []
        out = self._render(self._motion.push(self._features.finish()))
        out += self._render(self._motion.finish())
        self.closed = True
        return out

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc: object) -> None:
        self.closed = True

    def _render(self, track: MotionTrack, keep: KeepFrame | None = None) -> list[LiveFrame]:
        out = []
        for i in range(len(track)):
            index = self._next
            self._next += 1
            if keep is not None and not keep(index, i == len(track) - 1):
                self.dropped += 1
                continue
            motion = track.frame(i)
            frame = LiveFrame(index, index / self.fps, self.marks.apply(self._renderer.render(motion)), motion)
            if self.on_frame is not None:
                self.on_frame(frame)
            out.append(frame)
        return out
