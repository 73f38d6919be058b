"""Marking every output end to end: provenance tags, `--no-watermark`, `--label`, the API, and
`facetalk verify` with its exit codes (0 ours, 1 not ours, 2 unreadable)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import av
import numpy as np
import pytest

from facetalk.cli import main
from facetalk.media.video import VideoWriter, read_video_tags, sample_video_frames
from facetalk.pipeline import render_video
from facetalk.safety.detect import detect
from facetalk.safety.label import label_box
from helpers import decoded_frames


@pytest.fixture(scope="module")
def outputs(portrait_path: Path, short_voice_wav: Path, tmp_path_factory: pytest.TempPathFactory):
    """The same clip rendered three ways: marked; --no-watermark; --no-watermark --label."""
    d = tmp_path_factory.mktemp("verify")
    marked = render_video(portrait_path, short_voice_wav, d / "marked.mp4")
    plain = render_video(portrait_path, short_voice_wav, d / "plain.mp4", watermark=False)
    labelled = render_video(portrait_path, short_voice_wav, d / "labelled.mp4", watermark=False, label=True)
    return {"marked": (d / "marked.mp4", marked), "plain": (d / "plain.mp4", plain),
            "labelled": (d / "labelled.mp4", labelled)}


def verify_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    rc = main(["verify", *argv])
    out, err = capsys.readouterr()
    return rc, out, err


def test_output_carries_provenance_tags(outputs) -> None:
    path, summary = outputs["marked"]
    tags = read_video_tags(path)
    assert tags["generator"].startswith("facetalk ")
    assert tags["synthetic"] == "true"
    assert "synthetic" in tags["comment"] and summary.watermark_id in tags["comment"]
    assert tags["facetalk_watermark"] == f"on; id={summary.watermark_id}; format=1"
    created = datetime.strptime(tags["creation_time"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    assert abs(datetime.now(timezone.utc) - created) < timedelta(minutes=10)
    assert len(summary.watermark_id) == 8 and int(summary.watermark_id, 16) >= 0


def test_no_watermark_is_recorded_and_leaves_frames_unmarked(outputs) -> None:
    path, summary = outputs["plain"]
    assert summary.watermark_id is None
    tags = read_video_tags(path)
    assert tags["facetalk_watermark"].startswith("off") and "--no-watermark" in tags["facetalk_watermark"]
    assert tags["synthetic"] == "true"
    assert not detect(sample_video_frames(path, 96)).found
    assert detect(sample_video_frames(outputs["marked"][0], 96)).payload.hex_id == outputs["marked"][1].watermark_id


def test_label_burns_into_the_corner_only(outputs) -> None:
    plain = decoded_frames(outputs["plain"][0])
    labelled = decoded_frames(outputs["labelled"][0])
    h, w = plain[0].shape[:2]
    x0, y0, x1, y1 = label_box(h, w)[:4]
    for a, b in zip(plain[::10], labelled[::10]):
        diff = np.abs(a.astype(np.int16) - b).max(axis=2)
        assert diff[y0:y1, x0:x1].mean() > 20  # the tag is there
        outside = diff.copy()
        outside[max(0, y0 - 16) :, max(0, x0 - 16) :] = 0  # H.264 blocks next to the tag may differ
        assert outside.mean() < 1.0  # x264 spends its bits a little differently over the whole frame


def test_verify_says_ours_with_the_id(outputs, capsys: pytest.CaptureFixture[str]) -> None:
    path, summary = outputs["marked"]
    rc, out, _ = verify_cli(capsys, str(path))
    assert rc == 0
    assert "made by facetalk" in out and summary.watermark_id in out and "confidence" in out
    rc, out, _ = verify_cli(capsys, str(path), "--json")
    report = json.loads(out)
    assert rc == 0 and report["ours"] is True
    assert report["watermark"]["detected"] is True
    assert report["watermark"]["payload"] == {"version": 1, "id": summary.watermark_id}
    assert report["watermark"]["confidence"] > 0.999
    assert report["metadata"]["synthetic"] is True and report["notes"] == []


def test_verify_reads_metadata_alone_when_the_watermark_was_off(outputs, capsys) -> None:
    rc, out, _ = verify_cli(capsys, str(outputs["plain"][0]), "--json")
    report = json.loads(out)
    assert rc == 0 and report["ours"] is True
    assert report["watermark"]["detected"] is False
    assert report["metadata"]["watermark"].startswith("off")
    assert any("--no-watermark" in n for n in report["notes"])


def test_verify_finds_the_mark_after_the_tags_are_stripped(outputs, tmp_path: Path, capsys) -> None:
    """A 256² re-encode at CRF 28 with no metadata (as an upload makes it) is still ours."""
    from facetalk.safety.attacks import ATTACKS

    src, summary = outputs["marked"]
    out = tmp_path / "reupload.mp4"
    out.write_bytes(ATTACKS["reencode_downscale"](decoded_frames(src), np.random.default_rng(0)))
    assert "facetalk_watermark" not in read_video_tags(out)
    rc, text, _ = verify_cli(capsys, str(out))
    assert rc == 0 and summary.watermark_id in text and "nothing about facetalk" in text


def test_verify_says_not_ours_for_other_videos(outputs, tmp_path: Path, capsys) -> None:
    clip = tmp_path / "other.mp4"
    with VideoWriter(clip, 320, 240) as w:  # no tags, no mark: someone else's video
        for f in decoded_frames(outputs["plain"][0])[:40]:
            w.write(np.ascontiguousarray(f[100:340, 96:416]))
    rc, out, _ = verify_cli(capsys, str(clip))
    assert rc == 1 and "not made by facetalk" in out


def test_verify_unreadable_inputs_exit_2_with_one_line(tmp_path: Path, capsys) -> None:
    text = tmp_path / "notes.mp4"
    text.write_text("not a video")
    audio_only = tmp_path / "voice.m4a"
    with av.open(str(audio_only), "w", format="mp4") as c:
        s = c.add_stream("aac", rate=16000, layout="mono")
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        frame.sample_rate = 16000
        for p in [*s.encode(frame), *s.encode(None)]:
            c.mux(p)
    for bad in (tmp_path / "missing.mp4", text, audio_only, tmp_path):
        rc, out, err = verify_cli(capsys, str(bad))
        assert rc == 2, (bad, out, err)
        assert len(err.strip().splitlines()) == 1 and err.startswith("facetalk: error:") and "Traceback" not in err


def test_cli_generate_prints_the_id_and_takes_the_flags(portrait_path: Path, short_voice_wav: Path,
                                                        tmp_path: Path, capsys) -> None:
    out = tmp_path / "o.mp4"
    assert main(["generate", "-q", "--image", str(portrait_path), "--audio", str(short_voice_wav), "-o", str(out)]) == 0
    text = capsys.readouterr().out
    wid = read_video_tags(out)["facetalk_watermark"].split("id=")[1].split(";")[0]
    assert f"watermark: id {wid}" in text
    assert main(["generate", "-q", "--image", str(portrait_path), "--audio", str(short_voice_wav), "-o", str(out),
                 "--no-watermark", "--label"]) == 0
    assert "watermark: off" in capsys.readouterr().out
    assert read_video_tags(out)["facetalk_watermark"].startswith("off")


def test_api_frames_are_marked_unless_turned_off(rig, portrait, short_voice_wav: Path) -> None:
    from facetalk.api import Avatar

    avatar = Avatar(rig, np.array(portrait))
    marked = detect(avatar.speak(short_voice_wav))
    assert marked.found and marked.payload is not None
    assert not detect(avatar.speak(short_voice_wav, watermark=False)).found


def test_sampling_spreads_over_a_long_video(tmp_path: Path) -> None:
    path = tmp_path / "long.mp4"
    with VideoWriter(path, 64, 64, fps=25.0) as w:
        for i in range(400):
            w.write(np.full((64, 64, 3), i * 255 // 399, np.uint8))
    frames = list(sample_video_frames(path, 16, run=4))  # 400 > 16 × 4: the seeking path
    levels = [int(f.mean()) for f in frames]
    assert 8 <= len(frames) <= 16
    assert min(levels) < 60 and max(levels) > 190  # from the start to the end
    short = list(sample_video_frames(path, 500))
    assert len(short) == 400


def test_the_comment_alone_still_says_facetalk() -> None:
    """ffmpeg keeps `comment` on a re-encode but drops custom keys: verify reads it too."""
    from facetalk.safety.payload import Payload
    from facetalk.safety.provenance import metadata, read

    for payload in (Payload(0xABCDEF01), None):
        kept = {"comment": metadata(payload)["comment"], "encoder": "Lavf59"}
        p = read(kept)
        assert p.is_facetalk
        assert p.watermark_id == (None if payload is None else "abcdef01")
        assert p.watermark_off == (payload is None)
    assert not read({"comment": "my holiday"}).is_facetalk
