"""audio.features: per-video-frame loudness, brightness and voice activity from a stream of chunks."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import butter, sosfilt

from facetalk.audio.features import Features, audio_features

RATE = 16000


def tone(seconds: float, hz: float, amplitude: float = 0.5, rate: int = RATE) -> np.ndarray:
    t = np.arange(int(round(seconds * rate))) / rate
    return (amplitude * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def high_noise(seconds: float, seed: int = 0, rate: int = RATE) -> np.ndarray:
    """White noise high-passed above 3.5 kHz: a fricative-like hiss."""
    x = np.random.default_rng(seed).standard_normal(int(round(seconds * rate)))
    sos = butter(6, 3500 / (rate / 2), btype="high", output="sos")
    y = sosfilt(sos, x)
    return (0.3 * y / np.abs(y).max()).astype(np.float32)


def odd_chunks(x: np.ndarray, seed: int = 1) -> list[np.ndarray]:
    """Split into chunks of irregular sizes, starting with tiny ones (1 and 7 samples)."""
    rng = np.random.default_rng(seed)
    out, i = [], 0
    sizes = [1, 7, 333, 641]
    while i < len(x):
        n = sizes.pop(0) if sizes else int(rng.integers(1, 4000))
        out.append(x[i:i + n])
        i += n
    return out


@pytest.mark.parametrize("fps", [25.0, 30.0])
@pytest.mark.parametrize("seconds", [0.5, 2.0, 2.37, 3.0])
def test_frame_count_matches_duration(fps: float, seconds: float) -> None:
    x = tone(seconds, 440.0)
    f = audio_features([x], RATE, fps)
    assert isinstance(f, Features)
    expected = round(len(x) / RATE * fps)
    assert abs(len(f) - expected) <= 1
    for a in (f.loudness, f.level_db, f.brightness, f.active):
        assert a.shape == (len(f),)
        assert np.all(np.isfinite(a))
    assert f.fps == fps
    assert f.duration == pytest.approx(len(f) / fps)


def test_frame_count_of_the_voice(voice: np.ndarray) -> None:
    for fps in (25.0, 30.0):
        f = audio_features([voice], RATE, fps)
        assert abs(len(f) - round(len(voice) / RATE * fps)) <= 1


# Library bug (see the report): when a frame boundary falls at a non-integer sample position that
# rounds up, a chunk boundary there makes _FrameEnergies.push skip a frame (`first` is recomputed
# with ceil() from the carried sample position), so 30 and 29.97 fps lose frames when chunked.


@pytest.mark.parametrize("fps", [25.0, 30.0, 29.97])
def test_chunking_does_not_change_the_result(voice: np.ndarray, fps: float) -> None:
    whole = audio_features([voice], RATE, fps)
    chunked = audio_features(iter(odd_chunks(voice)), RATE, fps)
    assert len(whole) == len(chunked)
    for name in ("loudness", "level_db", "brightness", "active"):
        assert np.allclose(getattr(whole, name), getattr(chunked, name), atol=1e-4), name


def test_chunks_on_frame_boundaries_at_30_fps(voice: np.ndarray) -> None:
    """At 30 fps, 1600 samples are exactly 3 frames: chunks of that size change nothing."""
    whole = audio_features([voice], RATE, 30.0)
    chunked = audio_features([voice[i:i + 1600] for i in range(0, len(voice), 1600)], RATE, 30.0)
    assert len(whole) == len(chunked)
    assert np.allclose(whole.loudness, chunked.loudness, atol=1e-4)


def test_a_chunk_boundary_between_frames_keeps_every_frame(voice: np.ndarray) -> None:
    """Minimal case of the bug: at 30 fps frame 1 ends at sample round(2 * 533.33) = 1067."""
    x = voice[:3200]  # exactly 6 frames
    assert len(audio_features([x], RATE, 30.0)) == 6
    assert len(audio_features([x[:1067], x[1067:]], RATE, 30.0)) == 6


def test_an_empty_chunk_in_the_stream_changes_nothing(voice: np.ndarray) -> None:
    """A live source can deliver an empty read; it must not break or change the features."""
    x = voice[: 2 * RATE]
    whole = audio_features([x], RATE, 25.0)
    gapped = audio_features([x[:8000], x[:0], x[8000:]], RATE, 25.0)
    assert np.allclose(whole.loudness, gapped.loudness)


def test_accepts_a_generator_of_chunks(voice: np.ndarray) -> None:
    gen = (voice[i:i + 1600] for i in range(0, len(voice), 1600))
    f = audio_features(gen, RATE, 25.0)
    assert abs(len(f) - round(len(voice) / RATE * 25)) <= 1


def test_silence_is_quiet_and_inactive() -> None:
    f = audio_features([np.zeros(3 * RATE, np.float32)], RATE, 25.0)
    assert len(f) == 75
    assert np.all(f.loudness <= 1e-6)
    assert np.all(f.active <= 1e-6)
    assert np.all(f.level_db < -50)


def test_faint_noise_alone_is_not_speech() -> None:
    """A clip of -70 dBFS hiss is below the silence threshold whatever its own peak."""
    x = (np.random.default_rng(3).standard_normal(2 * RATE) * 10 ** (-70 / 20)).astype(np.float32)
    f = audio_features([x], RATE, 25.0)
    assert np.all(f.loudness <= 1e-6)
    assert np.all(f.active <= 1e-6)


def test_tone_burst_is_loud_only_while_it_sounds() -> None:
    fps = 25.0
    x = np.concatenate([np.zeros(RATE, np.float32), tone(1.0, 800.0), np.zeros(RATE, np.float32)])
    f = audio_features([x], RATE, fps)
    assert len(f) == 75
    burst = slice(27, 48)  # frames 25..49 hold the tone; keep clear of the edges
    assert np.all(f.loudness[burst] > 0.8)
    assert np.all(f.loudness[:23] < 0.05)
    assert np.all(f.loudness[52:] < 0.05)
    assert np.all(f.active[30:45] > 0.5)
    assert np.all(f.active[:25] < 0.1) and np.all(f.active[63:] < 0.1)  # causal: falls ~0.2 s after the sound
    # level in dBFS: a 0.5 sine is about -9 dBFS
    assert np.median(f.level_db[burst]) == pytest.approx(20 * np.log10(0.5 / np.sqrt(2)), abs=2.0)


def test_loudness_is_relative_to_the_clip_peak() -> None:
    """The same burst 20 dB quieter still reads as fully loud: loudness is normalised per clip."""
    x = np.concatenate([np.zeros(RATE // 2, np.float32), tone(1.0, 800.0), np.zeros(RATE // 2, np.float32)])
    loud = audio_features([x], RATE, 25.0)
    quiet = audio_features([x * 0.1], RATE, 25.0)
    assert np.allclose(loud.loudness[17:33], quiet.loudness[17:33], atol=0.05)
    assert np.median(loud.level_db[17:33]) - np.median(quiet.level_db[17:33]) == pytest.approx(20, abs=0.5)


def test_louder_frames_read_louder() -> None:
    x = np.concatenate([tone(1.0, 800.0, 0.5), tone(1.0, 800.0, 0.05)])  # second half 20 dB down
    f = audio_features([x], RATE, 25.0)
    assert f.loudness[5:20].mean() > f.loudness[30:45].mean() + 0.3


def test_brightness_high_for_hiss_low_for_a_low_tone() -> None:
    fps = 25.0
    hiss = audio_features([high_noise(2.0)], RATE, fps)
    hum = audio_features([tone(2.0, 300.0)], RATE, fps)
    assert np.median(hiss.brightness) > 0.6
    assert np.median(hum.brightness) < 0.1
    assert np.all(hiss.brightness[3:-3] > hum.brightness[3:-3])
    assert np.all((hiss.brightness >= 0) & (hiss.brightness <= 1))


def test_brightness_follows_the_sound_within_a_clip() -> None:
    x = np.concatenate([tone(1.0, 300.0, 0.3), high_noise(1.0)])
    f = audio_features([x], RATE, 25.0)
    assert f.brightness[30:45].mean() > f.brightness[5:20].mean() + 0.4


def test_other_sample_rates() -> None:
    """Band filters adapt to the rate: 48 kHz input gives the same frame count and a loud burst."""
    rate = 48000
    x = np.concatenate([np.zeros(rate, np.float32), tone(1.0, 800.0, rate=rate), np.zeros(rate, np.float32)])
    f = audio_features([x], rate, 25.0)
    assert len(f) == 75
    assert np.all(f.loudness[27:48] > 0.8) and np.all(f.loudness[:23] < 0.05)


def test_empty_stream_gives_no_frames() -> None:
    f = audio_features([], RATE, 25.0)
    assert len(f) == 0
