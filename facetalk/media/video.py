"""Write frames (plus the user's own audio) to an H.264 MP4, and read videos back.

The writer never leaves a half-written file at the output path: it encodes into a hidden
temporary file beside it and renames it into place only when everything succeeded. A crash,
Ctrl-C or a failing stage therefore leaves either the old file or nothing, never a broken MP4
that a user might share.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from types import TracebackType

import av
import av.error
import numpy as np
from av.video.reformatter import ColorRange, Colorspace

from facetalk.errors import FacetalkError
from facetalk.media._files import (
    AV_ERRORS,
    check_input_file,
    check_output_path,
    create_partial_file,
    one_line,
    open_media,
    remove_quietly,
    replace_output,
)
from facetalk.media.audio import decode_audio_frames, open_audio_input, resample_frames

_HINT = "pass an MP4, MOV, MKV, WebM or AVI video"
_AV_ERRORS = AV_ERRORS

# AAC rates every player handles; anything else (8 kHz phone audio, 11.025 kHz, 96 kHz) is
# resampled to 48 kHz rather than stored at a rate some decoders refuse.
_AAC_RATES = (48000, 44100, 32000, 24000, 22050, 16000)
_AAC_BITRATE_PER_CHANNEL = 64_000  # transparent for speech

_X264_PRESETS = (
    "ultrafast",
    "superfast",
    "veryfast",
    "faster",
    "fast",
    "medium",
    "slow",
    "slower",
    "veryslow",
    "placebo",
)

# Keys the MP4 muxer stores in the classic iTunes-style tags that every player shows. Any
# other key needs the muxer's "mdta" tags, which FFmpeg, exiftool and QuickTime read too.
_STANDARD_TAGS = frozenset(
    {
        "title",
        "artist",
        "album_artist",
        "composer",
        "album",
        "date",
        "comment",
        "genre",
        "copyright",
        "grouping",
        "lyrics",
        "description",
        "synopsis",
        "show",
        "episode_id",
        "network",
        "keywords",
    }
)
# libavformat overwrites "encoder" with its own version string, so a value put there is lost.
_RESERVED_TAGS = frozenset({"encoder"})


@dataclass(frozen=True)
class VideoInfo:
    """What a video holds; used by tests, evaluation and ``verify``."""

    width: int
    height: int
    fps: float  # average frame rate
    n_frames: int
    duration: float  # seconds, of the video stream
    has_audio: bool
    audio_duration: float | None  # seconds, None without an audio track


class VideoWriter:
    """Encode RGB frames to H.264/yuv420p MP4, optionally muxing the user's audio as AAC.

    Use as a context manager; the file appears at ``path`` only when the block exits cleanly::

        with VideoWriter("out.mp4", 512, 512, fps=25, audio_path="voice.wav") as w:
            for frame in frames:
                w.write(frame)

    The audio is decoded and encoded as the frames arrive, interleaved with them, and cut at
    the video's length, so memory stays flat however long the clip is.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        width: int,
        height: int,
        fps: float = 25.0,
        audio_path: str | os.PathLike[str] | None = None,
        crf: int = 20,
        preset: str = "veryfast",
        metadata: dict[str, str] | None = None,
    ) -> None:
        if width <= 0 or height <= 0 or width % 2 or height % 2:
            raise ValueError(f"H.264 yuv420p needs positive even width and height, got {width}×{height}")
        if not fps > 0:
            raise ValueError(f"fps must be positive, got {fps}")
        if not 0 <= crf <= 51:
            raise ValueError(f"crf must be in 0..51, got {crf}")
        if preset not in _X264_PRESETS:
            raise ValueError(f"unknown x264 preset {preset!r}; use one of {', '.join(_X264_PRESETS)}")
        tags = _checked_metadata(metadata)

        self.path = check_output_path(path)
        self.width = width
        self.height = height
        self.rate = Fraction(fps).limit_denominator(1001)
        self.n_frames = 0

        self._tmp: Path | None = None
        self._out: av.container.OutputContainer | None = None
        self._audio_in: av.container.InputContainer | None = None
        self._audio_blocks: Iterator[np.ndarray] | None = None
        self._audio_pending: np.ndarray | None = None
        self._audio_written = 0
        self._finished = False
        try:
            if audio_path is not None:
                # Opened first: a bad audio file should fail before any output file exists.
                self._audio_in, audio_stream = open_audio_input(Path(audio_path))
            self._tmp = create_partial_file(self.path, ".mp4")
            flags = "+faststart" + ("+use_metadata_tags" if set(tags) - _STANDARD_TAGS else "")
            self._out = av.open(str(self._tmp), "w", format="mp4", options={"movflags": flags})
            for key, value in tags.items():
                self._out.metadata[key] = value
            self._video = self._add_video_stream(crf, preset)
            if self._audio_in is not None:
                self._audio, self._audio_rate, self._audio_layout = self._add_audio_stream(audio_stream)
                self._audio_blocks = resample_frames(
                    decode_audio_frames(Path(audio_path), self._audio_in, audio_stream),  # type: ignore[arg-type]
                    "fltp",
                    self._audio_layout,
                    self._audio_rate,
                )
        except _AV_ERRORS as exc:
            self.abort()
            raise FacetalkError(
                f"cannot write '{self.path}': {one_line(exc)}; choose another output path"
            ) from None
        except BaseException:
            self.abort()
            raise

    # -- public API ---------------------------------------------------------------------------

    def write(self, frame: np.ndarray) -> None:
        """Append one H×W×3 uint8 RGB frame."""
        if self._finished:
            raise RuntimeError("VideoWriter.write() after close() or abort()")
        if frame.shape != (self.height, self.width, 3) or frame.dtype != np.uint8:
            raise ValueError(
                f"frame must be {self.height}×{self.width}×3 uint8, "
                f"got shape {frame.shape} dtype {frame.dtype}"
            )
        self._guarded(self._encode_frame, frame)

    def close(self) -> None:
        """Finish both streams and move the file into place. Idempotent."""
        if self._finished:
            return
        if self.n_frames == 0:
            self.abort()
            raise ValueError(f"no frames were written to '{self.path}'; nothing to save")
        self._guarded(self._finish)

    def abort(self) -> None:
        """Drop everything written so far; the output path is left untouched."""
        self._finished = True
        self._audio_blocks = None
        self._audio_pending = None
        for container in (self._out, self._audio_in):
            if container is not None:
                try:
                    container.close()
                except Exception:
                    pass  # the file is being thrown away; its trailer does not matter
        self._out = None
        self._audio_in = None
        remove_quietly(self._tmp)
        self._tmp = None

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is not None:
            self.abort()
        else:
            self.close()

    def __del__(self) -> None:
        # A writer dropped without close() must not leave its hidden temporary file behind.
        if not getattr(self, "_finished", True):
            try:
                self.abort()
            except Exception:
                pass

    # -- internals ----------------------------------------------------------------------------

    def _add_video_stream(self, crf: int, preset: str) -> av.video.stream.VideoStream:
        stream = self._out.add_stream("libx264", rate=self.rate, options={"crf": str(crf), "preset": preset})  # type: ignore[union-attr]
        stream.width = self.width
        stream.height = self.height
        stream.pix_fmt = "yuv420p"
        stream.thread_type = "AUTO"
        stream.codec_context.thread_count = 0  # one per core, x264's choice
        # Frames are converted with the BT.709 matrix below and tagged so, so players agree.
        cc = stream.codec_context
        cc.colorspace = 1  # AVCOL_SPC_BT709
        cc.color_primaries = 1  # AVCOL_PRI_BT709 (= sRGB primaries)
        cc.color_trc = 1  # AVCOL_TRC_BT709
        cc.color_range = 1  # AVCOL_RANGE_MPEG (limited, what players expect)
        return stream

    def _add_audio_stream(
        self, source: av.audio.stream.AudioStream
    ) -> tuple[av.audio.stream.AudioStream, int, str]:
        ctx = source.codec_context
        src_rate = int(ctx.sample_rate or source.rate or 0)
        channels = int(ctx.channels or 0)
        rate = src_rate if src_rate in _AAC_RATES else 48000
        layout = "mono" if channels == 1 else "stereo"
        stream = self._out.add_stream("aac", rate=rate, layout=layout)  # type: ignore[union-attr]
        stream.bit_rate = _AAC_BITRATE_PER_CHANNEL * (1 if layout == "mono" else 2)
        return stream, rate, layout

    def _guarded(self, step: Callable[..., None], *args: object) -> None:
        """Run an encoding step; on any failure throw the partial file away before re-raising."""
        try:
            step(*args)
        except FacetalkError:
            self.abort()
            raise
        except _AV_ERRORS as exc:
            self.abort()
            raise FacetalkError(
                f"cannot write '{self.path}': {one_line(exc)}; "
                "check free disk space or choose another output path"
            ) from None
        except BaseException:
            self.abort()
            raise

    def _encode_frame(self, rgb: np.ndarray) -> None:
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        frame = frame.reformat(
            format="yuv420p", dst_colorspace=Colorspace.ITU709, dst_color_range=ColorRange.MPEG
        )
        frame.pts = self.n_frames
        for packet in self._video.encode(frame):
            self._out.mux(packet)  # type: ignore[union-attr]
        self.n_frames += 1
        if self._audio_blocks is not None:
            self._pump_audio(self._audio_samples_at(self.n_frames))

    def _finish(self) -> None:
        for packet in self._video.encode(None):
            self._out.mux(packet)  # type: ignore[union-attr]
        if self._audio_in is not None:
            self._pump_audio(self._audio_samples_at(self.n_frames))
            for packet in self._audio.encode(None):
                self._out.mux(packet)  # type: ignore[union-attr]
            self._audio_blocks = None
            self._audio_in.close()
            self._audio_in = None
        self._out.close()  # type: ignore[union-attr]
        self._out = None
        replace_output(self._tmp, self.path)  # type: ignore[arg-type]
        self._tmp = None
        self._finished = True

    def _audio_samples_at(self, n_frames: int) -> int:
        """Audio samples that fit under ``n_frames`` of video: the cut that keeps A/V aligned."""
        return int(Fraction(n_frames) / self.rate * self._audio_rate)

    def _pump_audio(self, until: int) -> None:
        """Encode source audio up to sample ``until`` (never past it), as far as it exists."""
        while self._audio_written < until:
            if self._audio_pending is None or self._audio_pending.shape[1] == 0:
                block = next(self._audio_blocks, None) if self._audio_blocks is not None else None
                if block is None:
                    self._audio_blocks = None  # the audio ended before the video: nothing to add
                    return
                self._audio_pending = block
            take = min(self._audio_pending.shape[1], until - self._audio_written)
            part = np.ascontiguousarray(self._audio_pending[:, :take], dtype=np.float32)
            self._audio_pending = self._audio_pending[:, take:]
            frame = av.AudioFrame.from_ndarray(part, format="fltp", layout=self._audio_layout)
            frame.sample_rate = self._audio_rate
            frame.pts = self._audio_written
            frame.time_base = Fraction(1, self._audio_rate)
            for packet in self._audio.encode(frame):
                self._out.mux(packet)  # type: ignore[union-attr]
            self._audio_written += take


def read_video_frames(path: str | os.PathLike[str]) -> Iterator[tuple[float, np.ndarray]]:
    """Yield (seconds, H×W×3 uint8 RGB) for every frame of the first video stream.

    Opened and checked at call time, so a missing or sound-only file fails before iteration.
    """
    p = check_input_file(path, "video", _HINT)
    container = _open_video(p)
    container.close()
    return _iter_frames(p)


def sample_video_frames(path: str | os.PathLike[str], count: int, run: int = 8) -> Iterator[np.ndarray]:
    """Yield up to `count` H×W uint8 luminance frames spread over the whole video.

    For looking at a video rather than watching it (``verify``): a short video is decoded
    through and every k-th frame kept; a long one is visited at `count` / `run` points, `run`
    consecutive frames from the key frame at or before each, so the cost does not grow with its
    length. Opened and checked at call time, so a missing or sound-only file fails at once.
    """
    if count < 1:
        raise ValueError(f"count must be at least 1, got {count}")
    p = check_input_file(path, "video", _HINT)
    info = probe_video(p)
    if info.n_frames <= count * run or info.duration <= 0:
        stride = max(1, -(-info.n_frames // count))
        return (f for i, f in enumerate(_iter_luma(p)) if i % stride == 0 and i // stride < count)
    starts = [info.duration * (i + 0.5) / (count // run) for i in range(max(1, count // run))]
    return _iter_luma_runs(p, starts, run)


def read_video_tags(path: str | os.PathLike[str]) -> dict[str, str]:
    """The container's metadata tags (title, comment, creation_time, custom mdta keys, ...)."""
    p = check_input_file(path, "video", _HINT)
    with _open_video(p) as container:
        return {str(k): str(v) for k, v in container.metadata.items()}


def probe_video(path: str | os.PathLike[str]) -> VideoInfo:
    """Describe a video from its header, counting packets where the header is silent."""
    p = check_input_file(path, "video", _HINT)
    container = _open_video(p)
    with container:
        video = container.streams.video[0]
        audio = container.streams.audio[0] if container.streams.audio else None
        n_frames = int(video.frames or 0)
        duration = _header_duration(video)
        audio_duration = _header_duration(audio) if audio is not None else None
        if not n_frames or duration is None or (audio is not None and audio_duration is None):
            counted, spans = _count_packets(p, container, [s for s in (video, audio) if s is not None])
            n_frames = n_frames or counted
            duration = duration if duration is not None else spans.get(video.index)
            if audio is not None and audio_duration is None:
                audio_duration = spans.get(audio.index)
        if duration is None and container.duration:
            duration = container.duration / 1_000_000
        rate = video.average_rate or video.guessed_rate
        duration = float(duration or 0.0)
        fps = float(rate) if rate else (n_frames / duration if duration else 0.0)
        return VideoInfo(
            width=int(video.codec_context.width),
            height=int(video.codec_context.height),
            fps=fps,
            n_frames=n_frames,
            duration=duration,
            has_audio=audio is not None,
            audio_duration=audio_duration,
        )


def _checked_metadata(metadata: dict[str, str] | None) -> dict[str, str]:
    tags = dict(metadata or {})
    for key, value in tags.items():
        if not isinstance(key, str) or not isinstance(value, str) or not key:
            raise ValueError(f"metadata must map non-empty str to str, got {key!r}: {value!r}")
        if key in _RESERVED_TAGS:
            raise ValueError(
                f"metadata key {key!r} is overwritten by libavformat; use another key, e.g. 'comment'"
            )
    return tags


def _open_video(p: Path) -> av.container.InputContainer:
    return open_media(p, "video", _HINT, _HINT)


def _iter_frames(p: Path) -> Iterator[tuple[float, np.ndarray]]:
    for t, frame in _iter_decoded(p):
        yield t, frame.to_ndarray(format="rgb24")


def _iter_decoded(p: Path) -> Iterator[tuple[float, av.VideoFrame]]:
    container = _open_video(p)
    with container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        rate = stream.average_rate or stream.guessed_rate or Fraction(25)
        index = 0
        try:
            for frame in container.decode(stream):
                t = float(frame.time) if frame.time is not None else float(index / rate)
                yield t, frame
                index += 1
        except _AV_ERRORS as exc:
            raise FacetalkError(
                f"cannot decode video '{p}' at frame {index}: the data is corrupt or truncated "
                f"({one_line(exc)}); {_HINT}"
            ) from None


def _iter_luma(p: Path) -> Iterator[np.ndarray]:
    for _, frame in _iter_decoded(p):
        yield frame.to_ndarray(format="gray")


def _iter_luma_runs(p: Path, starts: list[float], run: int) -> Iterator[np.ndarray]:
    """`run` frames from the key frame at or before each of `starts` (seconds), each frame once."""
    container = _open_video(p)
    with container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        seen: set[int] = set()
        try:
            for t in starts:
                container.seek(int(t / stream.time_base), stream=stream, backward=True, any_frame=False)
                taken = 0
                for frame in container.decode(stream):
                    if frame.pts is None or frame.pts not in seen:
                        if frame.pts is not None:
                            seen.add(frame.pts)
                        yield frame.to_ndarray(format="gray")
                    taken += 1
                    if taken >= run:
                        break
        except _AV_ERRORS as exc:
            raise FacetalkError(
                f"cannot decode video '{p}': the data is corrupt or truncated ({one_line(exc)}); {_HINT}"
            ) from None


def _header_duration(stream: av.stream.Stream | None) -> float | None:
    if stream is None or not stream.duration or stream.time_base is None:
        return None
    return float(stream.duration * stream.time_base)


def _count_packets(
    p: Path, container: av.container.InputContainer, streams: list[av.stream.Stream]
) -> tuple[int, dict[int, float]]:
    """Count the first stream's packets and measure each stream's span; demuxes, never decodes."""
    first_index = streams[0].index
    count = 0
    start: dict[int, Fraction] = {}
    end: dict[int, Fraction] = {}
    try:
        for packet in container.demux(streams):
            if packet.size == 0 or packet.pts is None or packet.time_base is None:
                continue
            i = packet.stream.index
            if i == first_index:
                count += 1
            t0 = packet.pts * packet.time_base
            t1 = (packet.pts + (packet.duration or 0)) * packet.time_base
            start[i] = min(start.get(i, t0), t0)
            end[i] = max(end.get(i, t1), t1)
    except _AV_ERRORS as exc:
        raise FacetalkError(
            f"cannot read video '{p}': the data is corrupt or truncated ({one_line(exc)}); {_HINT}"
        ) from None
    return count, {i: float(end[i] - start[i]) for i in end}
