"""`facetalk eval` end to end on clips made here: one talking clip, one silent, one with no face.

The talking clip is our own generator's output, so its self-reenactment should come back almost
identical: a check that the protocol lines the two clips up in time and space.
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import pytest

from facetalk.cli import main
from facetalk.eval.report import ALL_METRICS, RATIO_METRICS
from facetalk.media.video import VideoWriter
from facetalk.motion.controls import Controls
from facetalk.pipeline import render_video

REAL_SIDE = set(ALL_METRICS) - {"mouth_corr", "mouth_corr_synced", "lmd", "closure_recall", "fps"}


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory, portrait_path: Path, short_voice_wav: Path,
          silence_wav: Path) -> Path:
    d = tmp_path_factory.mktemp("clips")
    render_video(portrait_path, short_voice_wav, d / "talking.mp4", controls=Controls(seed=0))
    render_video(portrait_path, silence_wav, d / "silent.mp4", controls=Controls(seed=0))
    with VideoWriter(d / "noface.mp4", 128, 128, audio_path=short_voice_wav) as w:
        for i in range(50):
            w.write(np.full((128, 128, 3), 60 + i, np.uint8))
    (d / "notes.txt").write_text("not a video; ignored")
    return d


@pytest.fixture(scope="module")
def evaluated(clips: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, str]:
    out = tmp_path_factory.mktemp("report")
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        rc = main(["eval", "--videos", str(clips), "--out", str(out), "--json"])
    assert rc == 0, stderr.getvalue()
    return out, json.loads(stdout.getvalue()), stderr.getvalue()


def test_report_shape(evaluated: tuple[Path, dict, str]) -> None:
    out, report, _ = evaluated
    assert report == json.loads((out / "report.json").read_text())
    assert [c["name"] for c in report["clips"]] == ["talking"]
    clip = report["clips"][0]
    assert set(clip["real"]) == REAL_SIDE
    assert set(clip["generated"]) == set(ALL_METRICS)
    assert set(clip["ratios"]) == set(RATIO_METRICS)
    assert set(report["mean"]) == {"real", "generated"}
    assert set(report["ratio_summary"]) == {"all", "other"}
    assert report["ratio_summary"]["all"]["mouth_open_sd"]["ratio_mean"] == pytest.approx(
        clip["ratios"]["mouth_open_sd"])
    assert report["mean"]["generated"]["fps"] == pytest.approx(clip["generated"]["fps"])


def test_unusable_clips_are_listed_with_a_reason(evaluated: tuple[Path, dict, str]) -> None:
    _, report, log = evaluated
    reasons = {s["name"]: s["reason"] for s in report["skipped"]}
    assert set(reasons) == {"silent", "noface"}
    assert "silent audio" in reasons["silent"]
    assert "no face" in reasons["noface"]
    assert "silent: skipped" in log and "noface: skipped" in log


def test_reenacting_our_own_clip_comes_back_close(evaluated: tuple[Path, dict, str]) -> None:
    _, report, _ = evaluated
    real, gen = report["clips"][0]["real"], report["clips"][0]["generated"]
    # Same audio, same seed: the same mouth movement frame for frame. Not identical to look at: the
    # first frame (the re-enactment's photo) shows a narrower slice of the portrait's teeth, so its
    # interior is painted where the original reused the portrait's own teeth.
    assert gen["mouth_corr"] > 0.6
    assert gen["lmd"] < 5.0
    assert abs(gen["av_offset_frames"] - real["av_offset_frames"]) <= 1
    assert real["id_match"] == gen["id_match"] == 1.0
    assert gen["id_distance"] < 0.3
    assert gen["sharpness_ratio"] > 0.5
    assert gen["background_psnr"] > 30
    assert gen["fps"] > 0
    # the same mouth movement, so the same amplitude: the ratio sees no half-open mouth
    ratios = report["clips"][0]["ratios"]
    assert 0.75 < ratios["mouth_open_sd"] < 1.33 and 0.75 < ratios["mouth_open_range"] < 1.33


def test_report_files(evaluated: tuple[Path, dict, str]) -> None:
    out, _, _ = evaluated
    md = (out / "report.md").read_text()
    assert "| talking |" in md and "**mean**" in md and "→" in md
    assert "silent audio" in md and "no face" in md
    for name in ("talking_plot.png", "talking_frames.png", "generated/talking.mp4", "generated/talking_photo.png"):
        assert (out / name).stat().st_size > 1000, name
    assert not list(out.glob(".*partial*"))


def test_the_generated_clip_is_measured_unmarked(evaluated: tuple[Path, dict, str]) -> None:
    """The watermark's pattern moves dlib's points; the evaluation measures the motion, and its
    videos say they carry no mark."""
    from facetalk.media.video import read_video_tags
    from facetalk.safety.provenance import read

    tags = read(read_video_tags(evaluated[0] / "generated" / "talking.mp4"))
    assert tags.is_facetalk and tags.watermark_off


def test_without_transcripts_no_bilabial_is_measured(evaluated: tuple[Path, dict, str]) -> None:
    clip = evaluated[1]["clips"][0]
    assert clip["real"]["bilabials_shut"] is None and clip["generated"]["bilabials_shut"] is None
    assert clip["text"] is None and clip["transcript"] is None


def test_the_lips_shut_on_the_m_its_words_place(clips: Path, tmp_path: Path) -> None:
    """The talking clip says "Hello! I am a talking face" (the built-in voice's first 2.5 s): with
    that transcript its M is found in the voice and the generated lips shut on it."""
    (tmp_path / "videos").mkdir()
    (tmp_path / "videos" / "talking.mp4").symlink_to(clips / "talking.mp4")
    (tmp_path / "words").mkdir()
    (tmp_path / "words" / "talking.txt").write_text("Hello! I am a talking face\n")
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        rc = main(["eval", "--videos", str(tmp_path / "videos"), "--out", str(tmp_path / "r"),
                   "--transcripts", str(tmp_path / "words")])
    assert rc == 0
    clip = json.loads((tmp_path / "r" / "report.json").read_text())["clips"][0]
    assert clip["text"] == clip["transcript"] == "Hello! I am a talking face"
    assert clip["generated"]["bilabials_shut"] == 1.0
    assert clip["real"]["bilabials_shut"] is not None


@pytest.mark.parametrize("words, message", [
    (None, "not a folder"),
    ({"other.txt": "hello"}, "no <clip name>.txt for any of the videos"),
    ({"talking.txt": "hello qzxwv"}, "talking.txt: --text: 'qzxwv' is not in the pronouncing dictionary"),
])
def test_bad_transcripts_fail_before_any_clip_is_rendered(clips: Path, tmp_path: Path, words: dict | None,
                                                          message: str, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "words"
    if words is not None:
        folder.mkdir()
        for name, text in words.items():
            (folder / name).write_text(text)
    rc = main(["eval", "--videos", str(clips), "--out", str(tmp_path / "r"), "--transcripts", str(folder)])
    err = capsys.readouterr().err
    assert rc == 2 and message in err and err.count("\n") == 1
    assert not (tmp_path / "r").exists()  # nothing rendered, no report folder


def test_from_sound_needs_transcripts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["eval", "--videos", str(tmp_path), "--out", str(tmp_path / "r"), "--from-sound"])
    err = capsys.readouterr().err
    assert rc == 2 and "--from-sound needs --transcripts" in err and err.count("\n") == 1


@pytest.mark.parametrize("make, message", [
    (lambda d: d / "missing", "not a folder"),
    (lambda d: d, "no videos"),
])
def test_bad_videos_folder_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str], make, message: str) -> None:
    rc = main(["eval", "--videos", str(make(tmp_path)), "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith("facetalk: error:") and message in err and err.count("\n") == 1
