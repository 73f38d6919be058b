"""iter_audio / read_audio / probe_audio over every container a user might hand us."""

from __future__ import annotations

import time
import tracemalloc
import wave
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from facetalk.errors import FacetalkError
from facetalk.media.audio import SAMPLE_RATE, iter_audio, probe_audio, read_audio
from helpers import corrupt_middle

SECONDS = 1.5

# name, encode_media kwargs, expected probe (rate, channels, codec prefix)
CASES = [
    ("wav8k_s16_mono.wav", dict(rate=8000, audio_codec="pcm_s16le"), 1, (8000, 1, "pcm_s16le")),
    ("wav48k_s24_stereo.wav", dict(rate=48000, audio_codec="pcm_s24le"), 2, (48000, 2, "pcm_s24le")),
    ("wav44k_f32_stereo.wav", dict(rate=44100, audio_codec="pcm_f32le"), 2, (44100, 2, "pcm_f32le")),
    ("wav22k_s32_mono.wav", dict(rate=22050, audio_codec="pcm_s32le"), 1, (22050, 1, "pcm_s32le")),
    ("a.mp3", dict(rate=44100, audio_codec="libmp3lame"), 2, (44100, 2, "mp3")),
    ("a.m4a", dict(rate=48000, audio_codec="aac", format="mp4"), 1, (48000, 1, "aac")),
    ("a.flac", dict(rate=96000, audio_codec="flac"), 2, (96000, 2, "flac")),
    (
        "a.ogg",
        dict(rate=44100, audio_codec="vorbis", audio_options={"strict": "-2"}),
        2,
        (44100, 2, "vorbis"),
    ),
    ("a.opus", dict(rate=48000, audio_codec="libopus", format="ogg"), 1, (48000, 1, "opus")),
    ("v.mp4", dict(rate=44100, audio_codec="aac", video_frames=20), 2, (44100, 2, "aac")),
    ("v.mkv", dict(rate=48000, audio_codec="libopus", video_frames=20), 2, (48000, 2, "opus")),
    (
        "v.avi",
        dict(rate=22050, audio_codec="libmp3lame", video_codec="mpeg4", video_frames=20),
        1,
        (22050, 1, "mp3"),
    ),
]


def _dominant_hz(x: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(x.size)))
    return float(np.argmax(spectrum) * rate / x.size)


def _assert_one_line(err: pytest.ExceptionInfo[FacetalkError], *fragments: str) -> None:
    msg = str(err.value)
    assert "\n" not in msg
    for fragment in fragments:
        assert fragment in msg, msg


@pytest.mark.parametrize("name, kwargs, channels, expected", CASES, ids=[c[0] for c in CASES])
def test_formats_decode_to_mono_16k(
    make_media: Callable[..., Path],
    has_encoder: Callable[[str], bool],
    name: str,
    kwargs: dict,
    channels: int,
    expected: tuple[int, int, str],
) -> None:
    if not has_encoder(kwargs["audio_codec"]):
        pytest.skip(f"this PyAV build has no {kwargs['audio_codec']} encoder")
    path = make_media(name, seconds=SECONDS, channels=channels, **kwargs)

    x = read_audio(path)
    assert x.dtype == np.float32 and x.ndim == 1 and x.flags.c_contiguous
    assert abs(x.size / SAMPLE_RATE - SECONDS) < 0.08
    assert np.abs(x).max() <= 1.0
    assert 0.3 < np.abs(x).max()  # the tone survived, not silence
    assert abs(_dominant_hz(x, SAMPLE_RATE) - 440) < 5

    info = probe_audio(path)
    rate, n_channels, codec = expected
    assert (info.sample_rate, info.channels) == (rate, n_channels)
    assert info.codec.startswith(codec)
    assert abs(info.duration - SECONDS) < 0.08


def test_other_rates_and_chunking(make_media: Callable[..., Path]) -> None:
    path = make_media("a.wav", seconds=2.0, rate=44100)
    assert read_audio(path, rate=8000).size == pytest.approx(16000, abs=2)
    chunks = list(iter_audio(path, chunk_seconds=0.5))
    assert [c.size for c in chunks[:-1]] == [8000] * (len(chunks) - 1)
    assert 0 < chunks[-1].size <= 8000
    assert all(c.dtype == np.float32 for c in chunks)
    assert np.array_equal(np.concatenate(chunks), read_audio(path))


def test_stereo_downmix_averages_without_clipping(make_media: Callable[..., Path]) -> None:
    n = 16000
    same = np.full((2, n), 0.9, np.float32)
    x = read_audio(make_media("same.wav", audio=same, rate=16000, audio_codec="pcm_f32le"))
    assert np.allclose(x, 0.9, atol=1e-4)
    opposite = np.stack([np.full(n, 0.9), np.full(n, -0.9)]).astype(np.float32)
    x = read_audio(make_media("opp.wav", audio=opposite, rate=16000, audio_codec="pcm_f32le"))
    assert np.abs(x).max() < 1e-4


def test_full_scale_input_stays_in_range(make_media: Callable[..., Path]) -> None:
    rng = np.random.default_rng(0)
    loud = np.sign(rng.standard_normal((2, 16000))).astype(np.float32)  # square-ish, full scale
    x = read_audio(make_media("loud.wav", audio=loud, rate=44100, audio_codec="pcm_f32le"))
    assert np.abs(x).max() <= 1.0


def test_long_file_streams_in_flat_memory(tmp_path: Path) -> None:
    """Ten minutes of 8 kHz WAV decode to 38 MB at 16 kHz; streaming must hold only a chunk or two."""
    path = tmp_path / "long.wav"
    minutes = 10
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        t = np.arange(8000) / 8000
        second = (np.sin(2 * np.pi * 440 * t) * 8000).astype("<i2").tobytes()
        for _ in range(minutes * 60):
            w.writeframes(second)
    decoded_bytes = minutes * 60 * SAMPLE_RATE * 4

    started = time.perf_counter()
    tracemalloc.start()
    try:
        total = 0
        for chunk in iter_audio(path, chunk_seconds=10.0):
            total += chunk.size
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert total == minutes * 60 * SAMPLE_RATE
    assert peak < decoded_bytes / 10, f"peak {peak / 1e6:.1f} MB"
    assert time.perf_counter() - started < 10
    assert probe_audio(path).duration == pytest.approx(minutes * 60)


def test_truncated_wav_decodes_what_exists_but_probe_says_it_is_cut(make_media: Callable[..., Path]) -> None:
    path = make_media("t.wav", seconds=2.0, rate=16000)
    data = path.read_bytes()
    path.write_bytes(data[: 44 + (len(data) - 44) // 2])
    assert read_audio(path).size == pytest.approx(16000, abs=40)  # the header is a little over 44 bytes
    with pytest.raises(FacetalkError, match="truncated: its header promises 2.00 s but only 1.00 s"):
        probe_audio(path)


def test_wav_cut_by_less_than_the_slack_is_accepted(make_media: Callable[..., Path]) -> None:
    path = make_media("t.wav", seconds=2.0, rate=16000)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 3200])  # 0.1 s short: a sloppy exporter, not a broken file
    assert probe_audio(path).duration == pytest.approx(1.9, abs=0.01)


def test_truncated_flac_keeps_all_but_the_partial_last_frame(make_media: Callable[..., Path]) -> None:
    path = make_media("t.flac", seconds=2.0, rate=16000, audio_codec="flac")
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * 0.9)])
    assert 1.5 < read_audio(path).size / SAMPLE_RATE < 1.9


# --- errors ----------------------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FacetalkError) as err:
        iter_audio(tmp_path / "nope.wav")  # raised at call time, not at the first next()
    _assert_one_line(err, "nope.wav", "does not exist")
    with pytest.raises(FacetalkError):
        probe_audio(tmp_path / "nope.wav")


def test_directory_and_empty_file(tmp_path: Path) -> None:
    with pytest.raises(FacetalkError) as err:
        read_audio(tmp_path)
    _assert_one_line(err, "folder")
    (tmp_path / "e.wav").write_bytes(b"")
    with pytest.raises(FacetalkError) as err:
        read_audio(tmp_path / "e.wav")
    _assert_one_line(err, "e.wav", "empty")


@pytest.mark.parametrize(
    "content", [b"just some text, not audio\n" * 20, b"RIFF\x10\x00\x00\x00WAVEjunk" + bytes(300)]
)
def test_not_a_media_file(tmp_path: Path, content: bytes) -> None:
    (tmp_path / "x.wav").write_bytes(content)
    with pytest.raises(FacetalkError) as err:
        read_audio(tmp_path / "x.wav")
    _assert_one_line(err, "x.wav")
    with pytest.raises(FacetalkError):
        probe_audio(tmp_path / "x.wav")


def test_broken_wav_header(make_media: Callable[..., Path]) -> None:
    path = make_media("b.wav", seconds=1.0)
    data = bytearray(path.read_bytes())
    data[8:16] = b"XXXXXXXX"  # "WAVEfmt " destroyed
    path.write_bytes(bytes(data))
    with pytest.raises(FacetalkError) as err:
        read_audio(path)
    _assert_one_line(err, "b.wav", "damaged")


def test_video_without_audio(make_media: Callable[..., Path]) -> None:
    path = make_media("silent.mp4", video_frames=10)
    with pytest.raises(FacetalkError) as err:
        iter_audio(path)
    _assert_one_line(err, "'", "silent.mp4' has no audio track; pass a file with speech")
    with pytest.raises(FacetalkError):
        probe_audio(path)


def test_zero_samples_and_too_short(tmp_path: Path, make_media: Callable[..., Path]) -> None:
    empty = tmp_path / "empty.wav"
    with wave.open(str(empty), "wb") as w:  # a valid header and no data
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
    with pytest.raises(FacetalkError) as err:
        read_audio(empty)
    _assert_one_line(err, "empty.wav' holds no audio samples", "at least 0.1 s")
    with pytest.raises(FacetalkError):
        probe_audio(empty)
    short = make_media("short.wav", seconds=0.02)
    with pytest.raises(FacetalkError) as err:
        read_audio(short)
    _assert_one_line(err, "short.wav", "at least 0.1 s")


def test_corrupt_data_mid_stream(make_media: Callable[..., Path]) -> None:
    path = make_media("c.m4a", seconds=3.0, rate=48000, audio_codec="aac", format="mp4")
    corrupt_middle(path)
    with pytest.raises(FacetalkError) as err:
        read_audio(path)
    _assert_one_line(err, "c.m4a", "corrupt")
