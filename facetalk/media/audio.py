"""Decode any audio a user might hand us into mono float32 at one sample rate, as a stream.

Voice clips come as WAV from a recorder, MP3 or M4A from a phone, OGG/Opus from a messenger,
or as the sound track of a video. PyAV (FFmpeg's libraries, bundled in the wheel) reads all of
them, so no system ffmpeg is needed. Everything is streamed: memory stays flat whether the
clip lasts three seconds or an hour.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import av.error
import numpy as np

from facetalk.errors import FacetalkError
from facetalk.media._files import AV_ERRORS, check_input_file, one_line, open_media

SAMPLE_RATE = 16000

# Shorter than this there is no syllable to animate; it is almost surely a wrong file.
MIN_SECONDS = 0.1

_HINT = "pass a WAV, MP3, M4A, FLAC or OGG clip with speech"

# Containers whose header states the exact length: falling short of it means the file was cut.
# (MP3 and OGG headers only estimate it, so they are not judged.)
_EXACT_HEADERS = ("wav", "flac", "aiff", "w64")
TRUNCATION_SLACK_S = 0.25

# libswresample's default stereo->mono matrix adds both channels at -3 dB each, which can
# exceed full scale in float formats; capping the matrix sum at 1 gives a plain average.
_RESAMPLER_OPTIONS = {"rematrix_maxval": "1.0"}

_AV_ERRORS = AV_ERRORS


@dataclass(frozen=True)
class AudioInfo:
    """What a clip is, before any decoding: enough to plan work and to report to the user."""

    duration: float  # seconds
    sample_rate: int  # the file's own rate, before resampling
    channels: int
    codec: str


def iter_audio(
    path: str | os.PathLike[str], rate: int = SAMPLE_RATE, chunk_seconds: float = 10.0
) -> Iterator[np.ndarray]:
    """Yield the first audio stream as mono float32 chunks in [-1, 1] at ``rate`` Hz.

    Chunks hold ``round(chunk_seconds * rate)`` samples except the last, which may be shorter.
    The file is opened and checked at call time, so a missing file or a video without sound is
    reported before the caller starts its own work, not at the first ``next()``.
    """
    if rate <= 0 or chunk_seconds <= 0:
        raise ValueError(f"rate and chunk_seconds must be positive, got {rate} and {chunk_seconds}")
    p = check_input_file(path, "audio", _HINT)
    container, _ = open_audio_input(p)
    container.close()
    return _iter_chunks(p, rate, max(1, round(chunk_seconds * rate)))


def read_audio(path: str | os.PathLike[str], rate: int = SAMPLE_RATE) -> np.ndarray:
    """The whole clip as one mono float32 array; for short clips and tests."""
    chunks = list(iter_audio(path, rate=rate, chunk_seconds=60.0))
    return np.concatenate(chunks) if len(chunks) > 1 else chunks[0]


def probe_audio(path: str | os.PathLike[str]) -> AudioInfo:
    """Describe the first audio stream without decoding it where the container can be trusted.

    MP4/M4A carry an exact sample table; for the rest (WAV headers that outlive a truncation,
    MP3 headers that estimate from the bit rate) the packets are counted, which reads the file
    once but decodes nothing.
    """
    p = check_input_file(path, "audio", _HINT)
    container, stream = open_audio_input(p)
    with container:
        ctx = stream.codec_context
        rate = int(ctx.sample_rate or stream.rate or 0)
        channels = int(ctx.channels or (ctx.layout.nb_channels if ctx.layout else 0) or 0)
        codec = ctx.name
        duration = _stream_duration(p, container, stream)
    if duration <= 0:
        raise FacetalkError(f"'{p}' holds no audio samples; pass a clip at least {MIN_SECONDS:g} s long")
    return AudioInfo(duration=duration, sample_rate=rate, channels=channels, codec=codec)


def open_audio_input(path: Path) -> tuple[av.container.InputContainer, av.audio.stream.AudioStream]:
    """Open ``path`` and return (container, its first audio stream); the caller closes it.

    Shared with the video writer, which copies the user's audio into the output file.
    """
    p = check_input_file(path, "audio", _HINT)
    container = open_media(p, "audio", _HINT, "pass a file with speech")
    return container, container.streams.audio[0]


def decode_audio_frames(
    path: Path, container: av.container.InputContainer, stream: av.audio.stream.AudioStream
) -> Iterator[av.AudioFrame]:
    """Yield decoded frames of ``stream``, turning decoder failures into one-line errors.

    A file cut short yields what is there, as players do: a partial final packet that the
    decoder rejects is dropped. Data rejected anywhere else is an error that names the
    position, so the user can find the damage.
    """
    position = 0.0
    rejected: Exception | None = None  # the last packet's failure, forgiven if nothing follows
    try:
        for packet in container.demux(stream):
            if packet.size == 0:  # the end-of-stream marker: drain the decoder
                rejected = None
                yield from packet.decode()
                continue
            if rejected is not None:
                raise rejected
            if packet.pts is not None and packet.time_base is not None:
                position = max(0.0, float(packet.pts * packet.time_base))
            try:
                frames = packet.decode()
            except av.error.InvalidDataError as exc:
                rejected = exc
                continue
            yield from frames
        if rejected is not None:
            raise rejected
    except _AV_ERRORS as exc:
        raise FacetalkError(
            f"cannot decode audio '{path}' near {position:.1f} s: the data is corrupt or truncated "
            f"({one_line(exc)}); re-export the clip or {_HINT}"
        ) from None


def resample_frames(
    frames: Iterable[av.AudioFrame], format: str, layout: str, rate: int
) -> Iterator[np.ndarray]:
    """Convert frames to ``format``/``layout``/``rate`` and yield (channels, n) float32 arrays.

    Some streams change rate or channel count midway (a radio rip, a spliced MP3); the
    resampler is rebuilt at each change, after flushing the samples it still holds.
    """
    resampler: av.AudioResampler | None = None
    setup: tuple[str, str, int] | None = None
    for frame in frames:
        key = (frame.format.name, frame.layout.name, frame.sample_rate)
        if key != setup:
            if resampler is not None:
                yield from _arrays(resampler.resample(None), layout)
            resampler = av.AudioResampler(
                format=format, layout=layout, rate=rate, options=dict(_RESAMPLER_OPTIONS)
            )
            setup = key
        yield from _arrays(resampler.resample(frame), layout)
    if resampler is not None:
        yield from _arrays(resampler.resample(None), layout)


def _arrays(frames: list[av.AudioFrame], layout: str) -> Iterator[np.ndarray]:
    channels = av.AudioLayout(layout).nb_channels
    for frame in frames:
        if frame.samples:
            a = frame.to_ndarray()
            # packed formats come back as (1, n*channels); planar ones as (channels, n)
            yield a.reshape(-1, channels).T if a.shape[0] != channels else a


def _iter_chunks(path: Path, rate: int, chunk: int) -> Iterator[np.ndarray]:
    container, stream = open_audio_input(path)
    with container:
        pending: list[np.ndarray] = []
        n_pending = 0
        n_yielded = 0
        for block in resample_frames(decode_audio_frames(path, container, stream), "flt", "mono", rate):
            mono = np.clip(block[0], -1.0, 1.0)
            pending.append(mono)
            n_pending += mono.size
            if n_pending >= chunk:
                joined = np.concatenate(pending)
                start = 0
                while joined.size - start >= chunk:
                    yield joined[start : start + chunk]
                    start += chunk
                    n_yielded += chunk
                pending = [joined[start:].copy()] if start < joined.size else []
                n_pending = joined.size - start
    total = n_yielded + n_pending
    if total == 0:
        raise FacetalkError(f"'{path}' holds no audio samples; pass a clip at least {MIN_SECONDS:g} s long")
    if total < MIN_SECONDS * rate:
        raise FacetalkError(
            f"'{path}' holds only {total / rate:.3f} s of audio; pass a clip at least {MIN_SECONDS:g} s long"
        )
    if n_pending:
        yield np.concatenate(pending).astype(np.float32, copy=False)


def _stream_duration(path: Path, container: av.container.InputContainer, stream: av.stream.Stream) -> float:
    """Seconds of audio in ``stream``: from the MP4 sample table, else by counting packets.

    Packet counts include an MP3's or Vorbis's encoder padding, which the header excludes,
    while a header can outlive a truncation; the smaller of the two is right in both cases.
    """
    header = float(stream.duration * stream.time_base) if stream.duration and stream.time_base else None
    if container.format.name == "wav":  # FFmpeg sizes a WAV from the file, not from its header
        header = _wav_declared_seconds(path) or header
    if header is not None and container.format.name.startswith("mov,mp4"):
        return header
    total = Fraction(0)
    try:
        for packet in container.demux(stream):
            if packet.size == 0:
                continue
            if not packet.duration or packet.time_base is None:
                return _decoded_duration(path)
            total += packet.duration * packet.time_base
    except _AV_ERRORS as exc:
        raise FacetalkError(
            f"cannot read audio '{path}': the data is corrupt or truncated ({one_line(exc)}); {_HINT}"
        ) from None
    if header is not None and container.format.name in _EXACT_HEADERS and \
            float(total) < header - max(TRUNCATION_SLACK_S, 0.02 * header):
        raise FacetalkError(
            f"audio '{path}' is truncated: its header promises {header:.2f} s but only {float(total):.2f} s "
            "are there; export or copy the clip again"
        )
    return min(float(total), header) if header is not None else float(total)


def _wav_declared_seconds(path: Path) -> float | None:
    """Length a RIFF/WAVE header declares (data chunk size / block size / rate), if it says one."""
    try:
        with open(path, "rb") as f:
            head = f.read(12)
            if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
                return None
            rate = block = 0
            while True:
                chunk = f.read(8)
                if len(chunk) < 8:
                    return None
                tag, size = chunk[:4], int.from_bytes(chunk[4:], "little")
                if tag == b"fmt ":
                    fmt = f.read(size)
                    rate = int.from_bytes(fmt[4:8], "little")
                    block = int.from_bytes(fmt[12:14], "little")
                    if size % 2:
                        f.read(1)
                elif tag == b"data":
                    if not rate or not block or size in (0, 0xFFFFFFFF):
                        return None  # streamed WAVs leave the size open
                    return size / block / rate
                else:
                    f.seek(size + (size % 2), 1)
    except OSError:
        return None


def _decoded_duration(path: Path) -> float:
    """Fallback for containers whose packets carry no durations: decode and count samples."""
    container, audio = open_audio_input(path)
    with container:
        samples = 0
        rate = 0
        for frame in decode_audio_frames(path, container, audio):
            samples += frame.samples
            rate = frame.sample_rate or rate
    return samples / rate if rate else 0.0


class PcmResampler:
    """Mono PCM at one rate in, chunk by chunk, mono float32 at another out: for live sound that
    arrives at the sender's rate (WebRTC's 48 kHz, a TTS's 24 kHz) and leaves at the session's.

    The resampler keeps its filter state between chunks, so a stream cut anywhere resamples as
    one piece; `flush` returns the few samples it still holds. Same rate in and out passes through.
    """

    def __init__(self, rate_in: int, rate_out: int = SAMPLE_RATE) -> None:
        if rate_in <= 0 or rate_out <= 0:
            raise FacetalkError(f"sample rates must be positive, got {rate_in} -> {rate_out}")
        self.rate_in = rate_in
        self.rate_out = rate_out
        self._av = None if rate_in == rate_out else av.AudioResampler(
            format="flt", layout="mono", rate=rate_out, options=dict(_RESAMPLER_OPTIONS))
        self._pts = 0

    def feed(self, pcm: np.ndarray) -> np.ndarray:
        """int16 or float samples (1-D, or (n, 1)) -> float32 samples at `rate_out`."""
        x = np.asarray(pcm).reshape(-1)
        x = x.astype(np.float32) / 32768.0 if x.dtype == np.int16 else x.astype(np.float32)
        if self._av is None or not len(x):
            return x
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(x[None, :]), format="flt", layout="mono")
        frame.sample_rate = self.rate_in
        frame.pts = self._pts
        frame.time_base = Fraction(1, self.rate_in)
        self._pts += len(x)
        return self._out(self._av.resample(frame))

    def flush(self) -> np.ndarray:
        return np.zeros(0, np.float32) if self._av is None else self._out(self._av.resample(None))

    @staticmethod
    def _out(frames: list[av.AudioFrame]) -> np.ndarray:
        parts = [a[0] for a in _arrays(frames, "mono")]
        return np.concatenate(parts).astype(np.float32) if parts else np.zeros(0, np.float32)
