"""The `facetalk` command line, end to end: videos it makes and the one-line errors it gives."""

from __future__ import annotations

import wave
from collections.abc import Callable
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from PIL import Image

from facetalk.cli import main
from helpers import decoded_frames, wav_seconds

FPS = 25.0


def probe(path: Path) -> tuple[int, int, int, float, bool]:
    """(width, height, frames, fps, has audio), via the project's prober where it exists."""
    try:
        from facetalk.media.video import probe_video
    except ImportError:
        probe_video = None
    if probe_video is not None:
        i = probe_video(path)
        return i.width, i.height, i.n_frames, i.fps, i.has_audio
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        n = sum(1 for _ in c.decode(video=0))
        return v.codec_context.width, v.codec_context.height, n, float(v.average_rate), bool(c.streams.audio)


def run_ok(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    rc = main(["generate", "-q", *argv] if argv and argv[0] != "demo" else list(argv))
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert "error" not in err.lower()
    return out


def assert_clean_error(capsys: pytest.CaptureFixture[str], rc: int, *fragments: str) -> str:
    out, err = capsys.readouterr()
    assert rc != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("facetalk: error:"), err
    assert "Traceback" not in err
    for f in fragments:
        assert f.lower() in lines[0].lower(), lines[0]
    return lines[0]


@pytest.fixture
def out_dir(tmp_path: Path) -> Path:
    d = tmp_path / "out"
    d.mkdir()
    return d


# --- videos ------------------------------------------------------------------------------------

def test_generate(capsys, out_dir: Path, portrait_path: Path, short_voice_wav: Path) -> None:
    out = out_dir / "clip.mp4"
    stdout = run_ok(capsys, "--image", str(portrait_path), "--audio", str(short_voice_wav), "-o", str(out))
    w, h, n, fps, has_audio = probe(out)
    assert (w, h) == (512, 512)
    assert abs(n - round(wav_seconds(short_voice_wav) * FPS)) <= 1
    assert fps == pytest.approx(FPS)
    assert has_audio
    assert str(out) in stdout and f"{n} frames" in stdout
    assert [p.name for p in out_dir.iterdir()] == ["clip.mp4"]


def test_generate_fps_and_size(capsys, out_dir: Path, portrait_path: Path, short_voice_wav: Path) -> None:
    out = out_dir / "small30.mp4"
    run_ok(capsys, "--image", str(portrait_path), "--audio", str(short_voice_wav), "-o", str(out),
           "--fps", "30", "--size", "256")
    w, h, n, fps, has_audio = probe(out)
    assert (w, h) == (256, 256)
    assert fps == pytest.approx(30.0)
    assert abs(n - round(wav_seconds(short_voice_wav) * 30)) <= 1
    assert has_audio


def test_full_frame_gives_the_photo_size(capsys, tmp_path: Path, out_dir: Path, portrait: np.ndarray,
                                         silence_wav: Path) -> None:
    """A 700x600 photo (the portrait with its edges extended) comes out 700x600."""
    wide = cv2.copyMakeBorder(np.ascontiguousarray(portrait), 40, 48, 60, 128, cv2.BORDER_REPLICATE)
    assert wide.shape[:2] == (600, 700)
    photo = tmp_path / "wide.png"
    Image.fromarray(wide).save(photo)
    out = out_dir / "full.mp4"
    run_ok(capsys, "--image", str(photo), "--audio", str(silence_wav), "-o", str(out), "--full-frame")
    w, h, n, _, has_audio = probe(out)
    assert (w, h) == (700, 600)
    assert abs(n - round(wav_seconds(silence_wav) * FPS)) <= 1
    assert has_audio
    # outside the face's crop the video shows the photo itself
    first = decoded_frames(out)[0]
    assert np.abs(first[:30, -100:].astype(np.int16) - wide[:30, -100:].astype(np.int16)).mean() < 4


@pytest.mark.parametrize("photo_wh, video_wh", [((301, 211), (300, 210)), ((4000, 3000), (1920, 1440))])
def test_full_frame_is_even_and_capped(capsys, tmp_path: Path, out_dir: Path, portrait: np.ndarray,
                                       silence_wav: Path, photo_wh: tuple[int, int],
                                       video_wh: tuple[int, int]) -> None:
    """H.264 needs even sides; full frame is at most 1920 px on the longer side."""
    interp = cv2.INTER_AREA if photo_wh[0] < 512 else cv2.INTER_LINEAR
    photo = tmp_path / "photo.jpg"
    Image.fromarray(cv2.resize(np.ascontiguousarray(portrait), photo_wh, interpolation=interp)).save(photo, quality=85)
    out = out_dir / "full.mp4"
    run_ok(capsys, "--image", str(photo), "--audio", str(silence_wav), "-o", str(out), "--full-frame")
    w, h, n, _, _ = probe(out)
    assert (w, h) == video_wh


def test_silence_is_valid_audio(capsys, out_dir: Path, portrait_path: Path, silence_wav: Path) -> None:
    out = out_dir / "quiet.mp4"
    run_ok(capsys, "--image", str(portrait_path), "--audio", str(silence_wav), "-o", str(out))
    w, h, n, _, has_audio = probe(out)
    assert (w, h, n) == (512, 512, round(wav_seconds(silence_wav) * FPS))
    assert has_audio


def test_same_seed_same_video(capsys, out_dir: Path, portrait_path: Path, short_voice_wav: Path) -> None:
    """Same seed, same video: to the bit without the watermark; with it (a new id per output) the
    two differ only by the invisible mark."""
    paths = {}
    for name, seed, marked in (("a", "5", False), ("b", "5", False), ("c", "6", False), ("d", "5", True)):
        paths[name] = out_dir / f"{name}.mp4"
        run_ok(capsys, "--image", str(portrait_path), "--audio", str(short_voice_wav), "-o", str(paths[name]),
               "--seed", seed, *(() if marked else ("--no-watermark",)))
    a, b, c, d = (decoded_frames(paths[k]) for k in "abcd")
    assert len(a) == len(b) == len(c) == len(d)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert any(not np.array_equal(x, y) for x, y in zip(a, c))
    assert max(np.abs(x.astype(int) - y.astype(int)).mean() for x, y in zip(a, d)) < 3.0  # PSNR ≥ 40 dB


def test_still_head_option(capsys, out_dir: Path, portrait_path: Path, silence_wav: Path) -> None:
    """--motion-intensity 0 --no-blink on silence: nothing moves, every frame is the same picture."""
    out = out_dir / "still.mp4"
    run_ok(capsys, "--image", str(portrait_path), "--audio", str(silence_wav), "-o", str(out),
           "--motion-intensity", "0", "--no-blink")
    frames = decoded_frames(out)
    first = frames[0].astype(np.int16)
    # gaze fixations still move the irises; everything else is still (up to H.264 noise)
    assert max(np.abs(f.astype(np.int16) - first).mean() for f in frames) < 1.5


def test_two_faces_note(capsys, tmp_path: Path, out_dir: Path, portrait: np.ndarray, silence_wav: Path) -> None:
    canvas = np.full((640, 1000, 3), 128, np.uint8)
    canvas[64:576, 0:512] = portrait
    canvas[160:480, 620:940] = cv2.resize(np.ascontiguousarray(portrait), (320, 320), interpolation=cv2.INTER_AREA)
    photo = tmp_path / "two.png"
    Image.fromarray(canvas).save(photo)
    out = out_dir / "two.mp4"
    rc = main(["generate", "-q", "--image", str(photo), "--audio", str(silence_wav), "-o", str(out), "--face", "1"])
    _, err = capsys.readouterr()
    assert rc == 0
    assert "2 faces" in err and "--face" in err
    assert out.exists()


def test_demo(capsys, tmp_path: Path, voice_path: Path) -> None:
    out = tmp_path / "demo.mp4"
    run_ok(capsys, "demo", "-q", "-o", str(out))
    w, h, n, fps, has_audio = probe(out)
    assert (w, h) == (512, 512)
    assert abs(n - round(wav_seconds(voice_path) * FPS)) <= 1
    assert has_audio


def test_version(capsys) -> None:
    from facetalk import __version__

    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert __version__ in capsys.readouterr().out


# --- errors ------------------------------------------------------------------------------------

def _gradient(d: Path) -> Path:
    img = np.tile(np.linspace(0, 255, 640).astype(np.uint8)[None, :, None], (480, 1, 3))
    Image.fromarray(np.ascontiguousarray(img)).save(d / "gradient.png")
    return d / "gradient.png"


def _text_photo(d: Path) -> Path:
    (d / "photo.jpg").write_text("this is not a photo\n")
    return d / "photo.jpg"


def _truncated_jpeg(d: Path, portrait: np.ndarray) -> Path:
    full = d / "full.jpg"
    Image.fromarray(portrait).save(full, quality=90)
    data = full.read_bytes()
    (d / "truncated.jpg").write_bytes(data[: len(data) // 2])
    return d / "truncated.jpg"


def _header_only_wav(d: Path) -> Path:
    with wave.open(str(d / "empty.wav"), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(b"")
    return d / "empty.wav"


def _text_audio(d: Path) -> Path:
    (d / "voice.wav").write_text("RIFF? no, just text\n" * 20)
    return d / "voice.wav"


# name -> (photo maker or None for the portrait, audio maker or None for the voice, extra args, fragment)
ERROR_CASES: dict[str, tuple[Callable | None, Callable | None, list[str], str]] = {
    "no face": (lambda d, p: _gradient(d), None, [], "no face"),
    "text as photo": (lambda d, p: _text_photo(d), None, [], "photo.jpg"),
    "truncated jpeg": (_truncated_jpeg, None, [], "truncated.jpg"),
    "missing photo": (lambda d, p: d / "nope.png", None, [], "does not exist"),
    "zero-sample wav": (None, lambda d: _header_only_wav(d), [], "empty.wav"),
    "text as audio": (None, lambda d: _text_audio(d), [], "voice.wav"),
    "missing audio": (None, lambda d: d / "missing.wav", [], "does not exist"),
    "bad fps": (None, None, ["--fps", "0"], "fps"),
    "odd size": (None, None, ["--size", "63"], "size"),
    "face out of range": (None, None, ["--face", "3"], "face"),
    "motion intensity": (None, None, ["--motion-intensity", "5"], "motion-intensity"),
    "word not in the dictionary": (None, None, ["--text", "hello qzxwv"], "qzxwv"),
    "text without words": (None, None, ["--text", " ... "], "no words"),
}


@pytest.mark.parametrize("case", sorted(ERROR_CASES))
def test_errors_are_one_line_and_leave_nothing(case: str, capsys, tmp_path: Path, out_dir: Path,
                                               portrait: np.ndarray, portrait_path: Path,
                                               short_voice_wav: Path) -> None:
    make_photo, make_audio, extra, fragment = ERROR_CASES[case]
    inputs = tmp_path / "in"
    inputs.mkdir()
    photo = make_photo(inputs, np.ascontiguousarray(portrait)) if make_photo else portrait_path
    audio = make_audio(inputs) if make_audio else short_voice_wav
    out = out_dir / "clip.mp4"
    rc = main(["generate", "-q", "--image", str(photo), "--audio", str(audio), "-o", str(out), *extra])
    assert_clean_error(capsys, rc, fragment)
    assert list(out_dir.iterdir()) == []  # no output, no partial temporary file


def test_output_in_a_missing_folder(capsys, tmp_path: Path, portrait_path: Path, short_voice_wav: Path) -> None:
    out = tmp_path / "no" / "such" / "dir" / "clip.mp4"
    rc = main(["generate", "-q", "--image", str(portrait_path), "--audio", str(short_voice_wav), "-o", str(out)])
    assert_clean_error(capsys, rc, "does not exist")
    assert not (tmp_path / "no").exists()


def test_output_is_a_folder(capsys, tmp_path: Path, out_dir: Path, portrait_path: Path,
                            short_voice_wav: Path) -> None:
    rc = main(["generate", "-q", "--image", str(portrait_path), "--audio", str(short_voice_wav), "-o", str(out_dir)])
    assert_clean_error(capsys, rc, "folder")
    assert list(out_dir.iterdir()) == []


def test_failed_run_keeps_an_existing_output(capsys, tmp_path: Path, out_dir: Path, portrait_path: Path) -> None:
    """A failing run must not destroy the video already at the output path."""
    out = out_dir / "clip.mp4"
    out.write_bytes(b"previous video")
    rc = main(["generate", "-q", "--image", str(portrait_path), "--audio", str(tmp_path / "missing.wav"),
               "-o", str(out)])
    assert_clean_error(capsys, rc)
    assert out.read_bytes() == b"previous video"
    assert [p.name for p in out_dir.iterdir()] == ["clip.mp4"]


def test_very_short_audio_still_makes_a_video(capsys, out_dir: Path, portrait_path: Path, voice: np.ndarray,
                                              wav_writer) -> None:
    clip = wav_writer("short.wav", voice[: int(0.3 * 16000)])
    out = out_dir / "short.mp4"
    rc = main(["generate", "-q", "--image", str(portrait_path), "--audio", str(clip), "-o", str(out)])
    _, err = capsys.readouterr()
    assert rc == 0, err
    assert probe(out)[2] == round(0.3 * FPS)
