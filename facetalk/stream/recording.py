"""Recordings of live sessions: kept on disk as they stream, offered once for download, then gone.

While a session runs, its sound goes to a WAV and its frames to a video-only H.264 MP4 (the
media layer's VideoWriter, encoding frame by frame), so memory stays flat however long the stream
lasts. At the end the two are muxed into one MP4 without re-encoding the video (a packet copy,
~1 s for 10 minutes). The store keeps at most `capacity` finished recordings, each for at most
`ttl_s` seconds or until its first download, so the disk stays bounded too.

Frames a session dropped to stay live (stream.shedding) are not encoded: each frame written keeps
its index on the audio clock, and the mux gives it that time, so the recording stays in step with
its sound (a variable frame rate where frames were dropped) and dropping saves the encoding too.
"""

from __future__ import annotations

import secrets
from array import array
import shutil
import threading
import time
import wave
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from facetalk.media._files import check_output_path, create_partial_file, remove_quietly, replace_output
from facetalk.media.audio import SAMPLE_RATE
from facetalk.media.video import VideoWriter

RECORD_PRESET = "superfast"  # x264: ~1.5 ms per 512² frame, off the frames' path to the client
RECORD_CRF = 23
AUDIO_BLOCK = SAMPLE_RATE // 2  # samples per AAC encoding step (0.5 s): interleaves with the video


class Recorder:
    """One live session's sound and frames on disk. Not thread-safe: one caller at a time."""

    def __init__(self, folder: Path, size: int, fps: float) -> None:
        folder.mkdir(parents=True)
        self.folder = folder
        self.size = size
        self.fps = fps
        self.frames = 0
        self._timeline = array("q")  # the audio-clock index of each frame written
        self._wav: wave.Wave_write | None = wave.open(str(folder / "audio.wav"), "wb")
        self._wav.setnchannels(1)
        self._wav.setsampwidth(2)
        self._wav.setframerate(SAMPLE_RATE)
        self._video: VideoWriter | None = None
        self.closed = False  # finished or aborted: further sound and frames are ignored

    def add_audio(self, pcm: np.ndarray) -> None:
        """Mono float32 samples in [-1, 1] at SAMPLE_RATE, as pushed to the session."""
        if self._wav is not None:
            self._wav.writeframes(np.clip(np.round(pcm * 32768.0), -32768, 32767).astype("<i2").tobytes())

    def add_frame(self, rgb: np.ndarray, index: int | None = None) -> None:
        """The next frame; `index` is its place on the audio clock (default: right after the last),
        larger than the last's where frames were dropped."""
        if self.closed:
            return
        last = self._timeline[-1] if self._timeline else -1
        index = last + 1 if index is None else index
        if index <= last:
            raise ValueError(f"recorded frames must come in order: frame {index} after frame {last}")
        if self._video is None:
            self._video = VideoWriter(self.folder / "video.mp4", self.size, self.size, fps=self.fps,
                                      crf=RECORD_CRF, preset=RECORD_PRESET)
        self._video.write(rgb)
        self._timeline.append(index)
        self.frames += 1

    def finish(self, out: Path, metadata: dict[str, str], clock_frames: int | None = None) -> bool:
        """Write the recording to `out` (atomically) with the session's provenance tags
        (safety.marks.Marks.metadata), `clock_frames` long (default: up to the last frame written);
        False if the session made no frame."""
        try:
            if self.closed or self._video is None or self._wav is None:
                return False
            self._video.close()
            self._wav.close()
            self._wav = None
            frames = max(clock_frames or 0, self._timeline[-1] + 1)
            gaps = self._timeline[-1] + 1 != len(self._timeline)
            mux_with_audio(self.folder / "video.mp4", self.folder / "audio.wav", out, frames / self.fps, metadata,
                           self._timeline if gaps else None, self.fps)
            return True
        finally:
            self.abort()

    def abort(self) -> None:
        """Drop everything; idempotent."""
        self.closed = True
        if self._video is not None:
            self._video.abort()
            self._video = None
        if self._wav is not None:
            try:
                self._wav.close()
            except Exception:
                pass  # the file is being thrown away
            self._wav = None
        shutil.rmtree(self.folder, ignore_errors=True)


def mux_with_audio(video: Path, audio: Path, out: Path, seconds: float, metadata: dict[str, str],
                   timeline: array | None = None, fps: float = 25.0) -> None:
    """`video`'s stream copied and a 16-bit mono WAV's sound as AAC, cut at `seconds`, into an MP4.

    With a `timeline` (the audio-clock index of each of the video's frames, at `fps`), each frame is
    given its index's time: frames left out of the video leave the one before on screen. The audio
    is encoded in AUDIO_BLOCK steps just ahead of the video packets it belongs with, so
    the file is interleaved (players can start it before it is all there) and memory stays flat.
    """
    out = check_output_path(out)
    tmp = create_partial_file(out, ".mp4")
    try:
        with av.open(str(video)) as src, wave.open(str(audio), "rb") as wav, \
                av.open(str(tmp), "w", format="mp4", options={"movflags": "+faststart+use_metadata_tags"}) as dst:
            for key, value in metadata.items():
                dst.metadata[key] = value
            v_in = src.streams.video[0]
            v_out = dst.add_stream_from_template(v_in)
            a_out = dst.add_stream("aac", rate=SAMPLE_RATE, layout="mono")
            a_out.bit_rate = 64_000
            total = min(wav.getnframes(), round(seconds * SAMPLE_RATE))
            done = 0
            for packet in src.demux(v_in):
                if packet.dts is None:  # the demuxer's end marker
                    continue
                if timeline is not None:
                    _retime(packet, v_in.time_base, timeline, fps)
                due = min(total, int((float(packet.dts * v_in.time_base) + 0.5) * SAMPLE_RATE))
                done = _encode_audio(dst, a_out, wav, done, due)
                packet.stream = v_out
                dst.mux(packet)
            _encode_audio(dst, a_out, wav, done, total)
            for packet in a_out.encode(None):
                dst.mux(packet)
        replace_output(tmp, out)
    except BaseException:
        remove_quietly(tmp)
        raise


def _retime(packet: av.Packet, time_base: Fraction, timeline: array, fps: float) -> None:
    """Move a packet of the n-th frame written to the time of timeline[n] (dts likewise: they stay
    in order, and never after the pts, because the timeline only grows)."""

    def moved(ticks: int) -> int:
        n = round(float(ticks * time_base) * fps)
        index = timeline[min(n, len(timeline) - 1)] + max(0, n - len(timeline) + 1) if n >= 0 else timeline[0] + n
        return round(index / fps / time_base)

    if packet.pts is not None:
        packet.pts = moved(packet.pts)
    packet.dts = moved(packet.dts)


def _encode_audio(dst: av.container.OutputContainer, stream: av.audio.stream.AudioStream, wav: wave.Wave_read,
                  done: int, until: int) -> int:
    """Encode the WAV's samples done..until; returns the new `done`."""
    while done < until:
        n = min(AUDIO_BLOCK, until - done)
        pcm = np.frombuffer(wav.readframes(n), "<i2")
        if pcm.size == 0:
            return until  # the WAV is shorter than asked: nothing more to add
        frame = av.AudioFrame.from_ndarray((pcm.astype(np.float32) / 32768.0)[None, :], format="fltp", layout="mono")
        frame.sample_rate = SAMPLE_RATE
        frame.pts = done
        frame.time_base = Fraction(1, SAMPLE_RATE)
        for packet in stream.encode(frame):
            dst.mux(packet)
        done += pcm.size
    return done


class RecordingStore:
    """Finished recordings by unguessable id: at most `capacity`, each kept `ttl_s` at most."""

    def __init__(self, folder: Path, capacity: int = 8, ttl_s: float = 600.0) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.capacity = capacity
        self.ttl_s = ttl_s
        self._items: dict[str, float] = {}  # id -> time it was added (monotonic s)
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def new_id(self) -> tuple[str, Path]:
        """An id and the path its MP4 is to be written to (not yet offered)."""
        rid = secrets.token_urlsafe(12)
        return rid, self.folder / f"{rid}.mp4"

    def add(self, rid: str) -> None:
        """Offer a written recording; the oldest go when over capacity."""
        with self._lock:
            self._items[rid] = time.monotonic()
            while len(self._items) > self.capacity:
                self._drop(next(iter(self._items)))

    def take(self, rid: str) -> Path | None:
        """The recording's path, withdrawn from the store: the caller sends it, then deletes it."""
        with self._lock:
            if self._items.pop(rid, None) is None:
                return None
            return self.folder / f"{rid}.mp4"

    def sweep(self) -> None:
        """Delete recordings older than ttl_s."""
        cutoff = time.monotonic() - self.ttl_s
        with self._lock:
            for rid in [rid for rid, added in self._items.items() if added < cutoff]:
                self._drop(rid)

    def _drop(self, rid: str) -> None:
        del self._items[rid]
        remove_quietly(self.folder / f"{rid}.mp4")
