"""VideoWriter, read_video_frames and probe_video: round trips, audio muxing, atomic output."""

from __future__ import annotations

import os
import tracemalloc
import wave
from collections.abc import Callable
from pathlib import Path

import av
import numpy as np
import pytest

from facetalk.errors import FacetalkError
from facetalk.media.audio import read_audio
from facetalk.media.video import VideoWriter, probe_video, read_video_frames
from helpers import corrupt_middle

W, H, FPS = 96, 64, 25.0


def _frame(i: int) -> np.ndarray:
    """Smooth content (H.264 keeps it close) that changes with ``i``."""
    y, x = np.mgrid[0:H, 0:W]
    rgb = np.stack([x * 255 // (W - 1), y * 255 // (H - 1), np.full_like(x, (i * 8) % 256)], axis=-1)
    return rgb.astype(np.uint8)


def _write(path: Path, n: int = 30, **kwargs: object) -> Path:
    with VideoWriter(path, W, H, **kwargs) as writer:  # type: ignore[arg-type]
        for i in range(n):
            writer.write(_frame(i))
    return path


def _assert_one_line(err: pytest.ExceptionInfo[FacetalkError], *fragments: str) -> None:
    msg = str(err.value)
    assert "\n" not in msg
    for fragment in fragments:
        assert fragment in msg, msg


def test_round_trip_with_audio(tmp_path: Path, make_media: Callable[..., Path]) -> None:
    voice = make_media("voice.wav", seconds=1.5, rate=44100, channels=2)  # longer than 30 frames
    out = _write(tmp_path / "out.mp4", 30, fps=FPS, audio_path=voice)

    info = probe_video(out)
    assert (info.width, info.height, info.n_frames) == (W, H, 30)
    assert info.fps == pytest.approx(FPS)
    assert info.duration == pytest.approx(30 / FPS, abs=1 / FPS)
    assert info.has_audio
    assert info.audio_duration is not None
    assert abs(info.audio_duration - info.duration) <= 1 / FPS  # trimmed to the video

    frames = list(read_video_frames(out))
    assert len(frames) == 30
    times = [t for t, _ in frames]
    assert times == pytest.approx([i / FPS for i in range(30)], abs=1e-3)
    for i, (_, rgb) in enumerate(frames):
        assert rgb.shape == (H, W, 3) and rgb.dtype == np.uint8
        assert np.abs(rgb.astype(int) - _frame(i)).mean() < 4

    with av.open(str(out)) as container:
        audio = container.streams.audio[0]
        assert audio.codec_context.name == "aac"
        assert audio.rate == 44100 and audio.codec_context.channels == 2
        assert container.streams.video[0].codec_context.pix_fmt == "yuv420p"

    # the muxed audio is the source audio, in time
    mixed = read_audio(out)
    source = read_audio(voice)[: mixed.size]
    n = min(mixed.size, source.size) - 400
    assert np.corrcoef(mixed[200:n], source[200:n])[0, 1] > 0.98

    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4", "voice.wav"]


def test_short_audio_and_unusual_rate(tmp_path: Path, make_media: Callable[..., Path]) -> None:
    voice = make_media("phone.wav", seconds=0.6, rate=8000)  # shorter than the video; 8 kHz
    out = _write(tmp_path / "out.mp4", 30, fps=FPS, audio_path=voice)
    info = probe_video(out)
    assert info.audio_duration == pytest.approx(0.6, abs=1 / FPS)
    with av.open(str(out)) as container:
        assert container.streams.audio[0].rate == 48000
        assert container.streams.audio[0].codec_context.channels == 1


def test_no_audio_ntsc_rate_and_metadata(tmp_path: Path) -> None:
    out = _write(
        tmp_path / "out.mp4",
        12,
        fps=30000 / 1001,
        metadata={"comment": "made by a test", "facetalk_provenance": "x1"},
    )
    info = probe_video(out)
    assert not info.has_audio and info.audio_duration is None
    assert info.fps == pytest.approx(29.97, abs=0.01)
    assert info.n_frames == 12
    with av.open(str(out)) as container:
        assert container.metadata["comment"] == "made by a test"
        assert container.metadata["facetalk_provenance"] == "x1"
    assert out.read_bytes()[4:8] == b"ftyp" and b"moov" in out.read_bytes()[:4096]  # +faststart


def test_exception_mid_way_leaves_nothing(tmp_path: Path) -> None:
    out = tmp_path / "out.mp4"
    with pytest.raises(RuntimeError, match="boom"):
        with VideoWriter(out, W, H) as writer:
            for i in range(10):
                writer.write(_frame(i))
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_failure_keeps_the_previous_file(tmp_path: Path) -> None:
    out = tmp_path / "out.mp4"
    out.write_bytes(b"previous result")
    with pytest.raises(ValueError):
        with VideoWriter(out, W, H) as writer:
            writer.write(_frame(0))
            writer.write(np.zeros((H, W), np.uint8))  # wrong shape
    assert out.read_bytes() == b"previous result"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4"]


def test_abort_and_empty_close(tmp_path: Path) -> None:
    writer = VideoWriter(tmp_path / "a.mp4", W, H)
    writer.write(_frame(0))
    writer.abort()
    with pytest.raises(ValueError):
        VideoWriter(tmp_path / "b.mp4", W, H).close()  # no frames: nothing to save
    assert list(tmp_path.iterdir()) == []


def test_output_location_errors(tmp_path: Path) -> None:
    with pytest.raises(FacetalkError) as err:
        VideoWriter(tmp_path / "missing" / "out.mp4", W, H)
    _assert_one_line(err, "out.mp4", "does not exist", "choose another output path")
    (tmp_path / "file").write_text("x")
    with pytest.raises(FacetalkError) as err:
        VideoWriter(tmp_path / "file" / "out.mp4", W, H)
    _assert_one_line(err, "not a directory")
    with pytest.raises(FacetalkError) as err:
        VideoWriter(tmp_path, W, H)
    _assert_one_line(err, "folder")


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root can write anywhere")
def test_unwritable_directory(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(FacetalkError) as err:
            VideoWriter(locked / "out.mp4", W, H)
        _assert_one_line(err, "not writable")
    finally:
        locked.chmod(0o700)


def test_bad_audio_fails_before_any_file_exists(tmp_path: Path, make_media: Callable[..., Path]) -> None:
    out = tmp_path / "out.mp4"
    with pytest.raises(FacetalkError) as err:
        VideoWriter(out, W, H, audio_path=tmp_path / "nope.wav")
    _assert_one_line(err, "nope.wav", "does not exist")
    silent = make_media("silent.mp4", video_frames=5)
    with pytest.raises(FacetalkError) as err:
        VideoWriter(out, W, H, audio_path=silent)
    _assert_one_line(err, "has no audio track")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["silent.mp4"]


def test_programming_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        VideoWriter(tmp_path / "o.mp4", 95, 64)  # odd width
    with pytest.raises(ValueError):
        VideoWriter(tmp_path / "o.mp4", W, H, metadata={"encoder": "facetalk"})  # lost by libavformat
    with pytest.raises(ValueError):
        VideoWriter(tmp_path / "o.mp4", W, H, preset="warp")
    assert list(tmp_path.iterdir()) == []


def test_reading_errors(tmp_path: Path, make_media: Callable[..., Path]) -> None:
    with pytest.raises(FacetalkError) as err:
        read_video_frames(tmp_path / "nope.mp4")
    _assert_one_line(err, "nope.mp4", "does not exist")
    voice = make_media("voice.wav", seconds=0.5)
    with pytest.raises(FacetalkError) as err:
        probe_video(voice)
    _assert_one_line(err, "voice.wav' has no video track")
    (tmp_path / "junk.mp4").write_bytes(b"\x00" * 1000)
    with pytest.raises(FacetalkError):
        probe_video(tmp_path / "junk.mp4")


def test_probe_counts_frames_when_the_header_does_not(make_media: Callable[..., Path]) -> None:
    path = make_media("v.mkv", video_frames=17, seconds=0.5, rate=48000, audio_codec="libopus")
    info = probe_video(path)
    assert info.n_frames == 17
    assert info.duration == pytest.approx(17 / 25, abs=1 / 25)
    assert info.has_audio and info.audio_duration == pytest.approx(0.5, abs=0.03)
    assert len(list(read_video_frames(path))) == 17


def test_corrupt_audio_mid_way_leaves_nothing(tmp_path: Path, make_media: Callable[..., Path]) -> None:
    voice = make_media("voice.m4a", seconds=3.0, rate=48000, audio_codec="aac", format="mp4")
    corrupt_middle(voice)
    with pytest.raises(FacetalkError) as err:
        _write(tmp_path / "out.mp4", 75, audio_path=voice)
    _assert_one_line(err, "voice.m4a", "corrupt")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["voice.m4a"]


def test_audio_is_muxed_in_flat_memory(tmp_path: Path) -> None:
    """30 s of 44.1 kHz stereo is 10 MB decoded; the writer must hold only a block or two."""
    voice = tmp_path / "long.wav"
    with wave.open(str(voice), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(44100)
        noise = (np.random.default_rng(0).standard_normal(2 * 44100) * 3000).astype("<i2").tobytes()
        for _ in range(30):
            w.writeframes(noise)
    frame = np.zeros((16, 16, 3), np.uint8)
    tracemalloc.start()
    try:
        with VideoWriter(
            tmp_path / "out.mp4", 16, 16, fps=25, audio_path=voice, preset="ultrafast"
        ) as writer:
            for _ in range(30 * 25):
                writer.write(frame)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2_000_000, f"peak {peak / 1e6:.1f} MB"
    info = probe_video(tmp_path / "out.mp4")
    assert info.n_frames == 750
    assert info.audio_duration == pytest.approx(30.0, abs=1 / 25)
