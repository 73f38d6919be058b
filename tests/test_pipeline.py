"""End to end through the Python API and the pipeline functions, on the built-in portrait and voice
(cut to 2.5 s) and on photos and clips made here in other formats."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import av
import cv2
import numpy as np
import pytest
from PIL import Image

from facetalk.api import Avatar
from facetalk.errors import FacetalkError
from facetalk.motion.controls import Controls
from facetalk.pipeline import features_from_audio, render_video
from helpers import decoded_frames, wav_seconds

FPS = 25.0


class Probe(NamedTuple):
    width: int
    height: int
    n_frames: int
    fps: float
    has_audio: bool
    audio_duration: float | None


def probe(path: Path) -> Probe:
    """What the MP4 holds: through the project's own prober where it exists, else PyAV directly."""
    try:
        from facetalk.media.video import probe_video
    except ImportError:
        probe_video = None
    if probe_video is not None:
        i = probe_video(path)
        return Probe(i.width, i.height, i.n_frames, i.fps, i.has_audio, i.audio_duration)
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        n = sum(1 for _ in c.decode(video=0))
        a = c.streams.audio[0] if c.streams.audio else None
        ad = float(a.duration * a.time_base) if a is not None and a.duration else None
        return Probe(v.codec_context.width, v.codec_context.height, n, float(v.average_rate), a is not None, ad)


def expected_frames(audio: Path, fps: float = FPS) -> int:
    return round(wav_seconds(audio) * fps)


@pytest.fixture(scope="module")
def avatar(portrait_path: Path) -> Avatar:
    return Avatar.from_image(portrait_path)


# --- pipeline.render_video ----------------------------------------------------------------------

def test_render_video_writes_a_complete_mp4(tmp_path: Path, portrait_path: Path, short_voice_wav: Path) -> None:
    out = tmp_path / "clip.mp4"
    calls: list[tuple[int, int]] = []
    summary = render_video(portrait_path, short_voice_wav, out, progress=lambda d, t: calls.append((d, t)))
    n = expected_frames(short_voice_wav)
    assert abs(summary.frames - n) <= 1
    assert (summary.width, summary.height) == (512, 512)
    assert summary.video_seconds == pytest.approx(summary.frames / FPS)
    info = probe(out)
    assert (info.width, info.height) == (512, 512)
    assert info.n_frames == summary.frames
    assert info.fps == pytest.approx(FPS)
    assert info.has_audio
    assert info.audio_duration == pytest.approx(wav_seconds(short_voice_wav), abs=0.1)
    # progress reports every frame, in order, against the right total
    assert [d for d, _ in calls] == list(range(1, summary.frames + 1))
    assert {t for _, t in calls} == {summary.frames}
    # nothing but the output is left in its folder
    assert [p.name for p in tmp_path.iterdir()] == ["clip.mp4"]


def test_output_says_it_is_synthetic(tmp_path: Path, portrait_path: Path, short_voice_wav: Path) -> None:
    out = tmp_path / "clip.mp4"
    render_video(portrait_path, short_voice_wav, out)
    with av.open(str(out)) as c:
        tags = " ".join(str(v) for v in c.metadata.values()).lower()
    assert "synthetic" in tags and "facetalk" in tags


def test_the_video_moves_and_starts_at_the_photo(tmp_path: Path, portrait_path: Path, short_voice_wav: Path,
                                                 rig) -> None:
    out = tmp_path / "clip.mp4"
    render_video(portrait_path, short_voice_wav, out, controls=Controls(seed=1))
    frames = decoded_frames(out)
    assert all(f.shape == (512, 512, 3) for f in frames)
    # the mouth region changes over the clip (it talks)
    lm = rig.landmarks
    x0, y0 = np.floor(lm[[61, 13], :2].min(0)).astype(int) - 5
    x1, y1 = np.ceil(lm[[291, 14], :2].max(0)).astype(int) + 15
    mouth = np.stack([f[y0:y1, x0:x1].astype(np.float32) for f in frames])
    change = np.abs(mouth - mouth.min(0)).mean(axis=(1, 2, 3))  # how far each frame is from the most closed
    assert change.max() > 10
    # every frame still looks like the photo (same person, same place); H.264 adds a little error
    for f in frames[::10]:
        assert np.abs(f.astype(np.int16) - rig.image.astype(np.int16)).mean() < 25


def test_render_video_leaves_nothing_on_failure(tmp_path: Path, media_dir: Path, short_voice_wav: Path) -> None:
    blank = media_dir / "blank.png"
    Image.new("RGB", (320, 240), (128, 128, 128)).save(blank)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    with pytest.raises(FacetalkError, match="no face"):
        render_video(blank, short_voice_wav, out_dir / "clip.mp4")
    assert list(out_dir.iterdir()) == []


def test_features_from_audio_frame_count(short_voice_wav: Path, silence_wav: Path) -> None:
    for path in (short_voice_wav, silence_wav):
        for fps in (25.0, 30.0):
            f = features_from_audio(path, fps)
            assert abs(len(f) - expected_frames(path, fps)) <= 1


def test_features_from_stereo_44k(voice: np.ndarray, wav_writer, short_voice_wav: Path) -> None:
    """A 44.1 kHz stereo clip of the same speech gives the same frames as the 16 kHz mono one."""
    x = voice[: int(2.5 * 16000)]
    t44 = np.arange(int(2.5 * 44100)) / 44100
    up = np.interp(t44, np.arange(len(x)) / 16000, x)
    path = wav_writer("stereo44.wav", np.stack([up, up], 1), 44100)
    a, b = features_from_audio(path, FPS), features_from_audio(short_voice_wav, FPS)
    assert len(a) == len(b)
    assert np.corrcoef(a.loudness, b.loudness)[0, 1] > 0.95


# --- the Avatar API ----------------------------------------------------------------------------

def test_avatar_speaks_one_frame_per_video_frame(avatar: Avatar, short_voice_wav: Path) -> None:
    frames = list(avatar.speak(short_voice_wav))
    assert abs(len(frames) - expected_frames(short_voice_wav)) <= 1
    for f in frames:
        assert f.shape == (512, 512, 3) and f.dtype == np.uint8


def test_avatar_speak_is_lazy_and_seeded(avatar: Avatar, short_voice_wav: Path) -> None:
    it = avatar.speak(short_voice_wav, Controls(seed=3), watermark=False)  # a marked output has its own id
    first = next(iter(it)).copy()
    assert first.shape == (512, 512, 3)
    a = [f.copy() for f in avatar.speak(short_voice_wav, Controls(seed=3), watermark=False)]
    b = [f.copy() for f in avatar.speak(short_voice_wav, Controls(seed=3), watermark=False)]
    c = [f.copy() for f in avatar.speak(short_voice_wav, Controls(seed=4), watermark=False)]
    assert np.array_equal(a[0], first)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert any(not np.array_equal(x, y) for x, y in zip(a, c))


def test_avatar_speak_at_30_fps(avatar: Avatar, short_voice_wav: Path) -> None:
    n = sum(1 for _ in avatar.speak(short_voice_wav, fps=30.0))
    assert abs(n - expected_frames(short_voice_wav, 30.0)) <= 1


def test_avatar_full_frame(avatar: Avatar, silence_wav: Path, portrait: np.ndarray) -> None:
    frames = avatar.speak(silence_wav, full_frame=True)
    f = next(iter(frames))
    assert f.shape == (portrait.shape[0] // 2 * 2, portrait.shape[1] // 2 * 2, 3)


def test_avatar_from_array(portrait: np.ndarray, avatar: Avatar, silence_wav: Path) -> None:
    from_array = Avatar.from_image(np.array(portrait))
    assert from_array.source is None
    assert np.allclose(from_array.rig.landmarks, avatar.rig.landmarks, atol=1.0)
    frames = list(from_array.speak(silence_wav))
    assert abs(len(frames) - expected_frames(silence_wav)) <= 1


@pytest.mark.parametrize("bad", [np.zeros((64, 64), np.uint8), np.zeros((64, 64, 4), np.uint8),
                                 np.zeros((64, 64, 3), np.float32)])
def test_avatar_rejects_arrays_that_are_not_rgb_uint8(bad: np.ndarray) -> None:
    with pytest.raises(ValueError, match="uint8"):
        Avatar.from_image(bad)


def test_avatar_render_to(avatar: Avatar, tmp_path: Path, short_voice_wav: Path) -> None:
    out = tmp_path / "api.mp4"
    summary = avatar.render_to(out, short_voice_wav, fps=30.0)
    info = probe(out)
    assert info.fps == pytest.approx(30.0)
    assert info.n_frames == summary.frames
    assert abs(info.n_frames - expected_frames(short_voice_wav, 30.0)) <= 1
    assert info.has_audio


def test_avatar_bad_photo_is_a_facetalk_error(tmp_path: Path) -> None:
    text = tmp_path / "photo.jpg"
    text.write_text("not a photo")
    with pytest.raises(FacetalkError):
        Avatar.from_image(text)


# --- photos in the formats people send ----------------------------------------------------------

def _save(img: np.ndarray, path: Path, fmt: str | None = None, mode: str | None = None, **kw) -> Path:
    im = Image.fromarray(img)
    if mode is not None:
        im = im.convert(mode)
    im.save(path, format=fmt, **kw)
    return path


def _rgba(portrait: np.ndarray) -> np.ndarray:
    """The portrait with a transparent border (alpha 0 outside a centred disc)."""
    h, w = portrait.shape[:2]
    alpha = np.zeros((h, w), np.uint8)
    cv2.circle(alpha, (w // 2, h // 2 - 40), int(0.45 * min(h, w)), 255, -1)
    return np.dstack([portrait, alpha])


PHOTO_VARIANTS = {
    "rgba.png": lambda p, d: _save(_rgba(p), d / "rgba.png"),
    "png_named.jpg": lambda p, d: _save(p, d / "png_named.jpg", fmt="PNG"),
    "photo.webp": lambda p, d: _save(p, d / "photo.webp", quality=90),
    "gray.jpg": lambda p, d: _save(p, d / "gray.jpg", mode="L", quality=90),
    "tiny.png": lambda p, d: _save(cv2.resize(p, (200, 200), interpolation=cv2.INTER_AREA), d / "tiny.png"),
    "huge.jpg": lambda p, d: _save(cv2.resize(p, (4000, 4000), interpolation=cv2.INTER_CUBIC), d / "huge.jpg",
                                   quality=85),
}


@pytest.mark.parametrize("name", sorted(PHOTO_VARIANTS))
def test_photo_formats(name: str, portrait: np.ndarray, tmp_path: Path, silence_wav: Path) -> None:
    path = PHOTO_VARIANTS[name](np.ascontiguousarray(portrait), tmp_path)
    avatar = Avatar.from_image(path)
    lm = avatar.rig.landmarks
    assert 0.35 < np.linalg.norm(lm[234, :2] - lm[454, :2]) / avatar.rig.size < 0.65
    assert avatar.rig.grayscale == (name == "gray.jpg")
    frame = next(iter(avatar.speak(silence_wav)))
    assert frame.shape == (512, 512, 3)
    assert np.abs(frame.astype(np.int16) - avatar.rig.image.astype(np.int16)).mean() < 5


def test_transparent_background_is_white(portrait: np.ndarray, tmp_path: Path) -> None:
    avatar = Avatar.from_image(PHOTO_VARIANTS["rgba.png"](np.ascontiguousarray(portrait), tmp_path))
    assert np.all(avatar.photo[0, 0] == 255) and np.all(avatar.photo[-1, -1] == 255)


@pytest.mark.parametrize("exc", [RuntimeError, KeyboardInterrupt])
def test_interrupted_render_leaves_nothing(tmp_path: Path, portrait_path: Path, short_voice_wav: Path,
                                           exc: type[BaseException]) -> None:
    """A failure or Ctrl-C in the middle of encoding leaves neither the output nor a temporary file."""
    out_dir = tmp_path / "out"
    out_dir.mkdir()

    def stop_at_frame_5(done: int, total: int) -> None:
        if done == 5:
            raise exc("stop")

    with pytest.raises(exc):
        render_video(portrait_path, short_voice_wav, out_dir / "clip.mp4", progress=stop_at_frame_5)
    assert list(out_dir.iterdir()) == []
