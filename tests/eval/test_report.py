"""The evaluation report: means, strict JSON, a readable markdown table, plots and contact sheets."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facetalk.eval.report import (
    ALL_METRICS,
    AMPLITUDE_METRICS,
    DESCRIPTIONS,
    GENERATED_ONLY,
    METRICS,
    RATIO_METRICS,
    UNITS,
    clip_group,
    clip_ratios,
    contact_sheet,
    mean_metrics,
    plot_clip,
    plot_path,
    ratio_summary,
    sheet_path,
    typical_factor,
    write_report,
)
from facetalk.eval.series import ClipSeries


def _strict_json(text: str) -> object:
    def refuse(token: str) -> object:
        raise ValueError(f"non-standard JSON token {token}")

    return json.loads(text, parse_constant=refuse)


def _cells(row: str) -> list[str]:
    """The cells of a markdown table row, split at unescaped pipes."""
    return [c.strip() for c in re.split(r"(?<!\\)\|", row)[1:-1]]


def _clips() -> list[dict]:
    return [
        {
            "name": "v01",
            "real": {"av_corr": 0.41, "av_offset_frames": 1.0, "yaw_sd": float("nan"), "blinks_per_min": 12.0},
            "generated": {"av_corr": 0.37, "av_offset_frames": 2.0, "yaw_sd": 3.0, "mouth_corr": 0.8,
                          "fps": 110.0, "blinks_per_min": None},
        },
        {
            "name": "v|02",
            "real": {"av_corr": 0.21, "av_offset_frames": -1.0, "yaw_sd": None, "blinks_per_min": 18.0},
            "generated": {"av_corr": np.float64(0.17), "av_offset_frames": 0.0, "yaw_sd": 5.0,
                          "mouth_corr": float("nan"), "fps": float("inf"), "blinks_per_min": float("nan")},
        },
    ]


def test_metric_tables_cover_every_metric() -> None:
    assert len(METRICS) == 19 and len(set(METRICS)) == 19
    assert len(set(ALL_METRICS)) == len(METRICS) + len(AMPLITUDE_METRICS)
    assert set(UNITS) == set(ALL_METRICS) == set(DESCRIPTIONS)
    assert set(RATIO_METRICS) <= set(ALL_METRICS) - GENERATED_ONLY
    assert {"mouth_open_sd", "mouth_open_range", "lip_dynamics", "silent_lip_mad", "brow_sd", "smile_sd",
            "eye_open_sd", "yaw_sd", "pitch_sd", "roll_sd"} <= set(RATIO_METRICS)
    assert GENERATED_ONLY == {"mouth_corr", "mouth_corr_synced", "lmd", "closure_recall", "fps"}


def test_mean_metrics_ignores_missing_values() -> None:
    mean = mean_metrics(_clips())
    assert set(mean) == {"real", "generated"}
    real, gen = mean["real"], mean["generated"]
    assert real["av_corr"] == pytest.approx(0.31)
    assert real["av_offset_frames"] == pytest.approx(0.0)
    assert real["blinks_per_min"] == pytest.approx(15.0)
    assert real["yaw_sd"] is None  # NaN in one clip, None in the other
    assert gen["yaw_sd"] == pytest.approx(4.0)
    assert gen["mouth_corr"] == pytest.approx(0.8)  # NaN does not vote
    assert gen["blinks_per_min"] is None
    assert gen["fps"] == math.inf  # only None and NaN are skipped; write_report turns inf into null
    assert "mouth_corr" not in real and "lmd" not in gen  # only metrics that appear
    assert list(gen) == [m for m in METRICS if m in gen]  # report order
    assert all(isinstance(v, float) for v in gen.values() if v is not None)


def test_mean_metrics_of_no_clips() -> None:
    assert mean_metrics([]) == {"real": {}, "generated": {}}


def test_write_report_json_and_markdown(tmp_path: Path) -> None:
    clips = _clips()
    report = {
        "facetalk_version": "0.1.0",
        "videos": 3,
        "seconds": 12.5,
        "clips": clips,
        "mean": mean_metrics(clips),
        "skipped": [{"name": "v03", "reason": "no face in the first 10 s"}],
    }
    (tmp_path / "v01_plot.png").write_bytes(b"png")  # only v01 has pictures
    (tmp_path / "v01_frames.png").write_bytes(b"png")
    write_report(report, tmp_path)

    data = _strict_json((tmp_path / "report.json").read_text(encoding="utf-8"))
    assert list(data) == ["facetalk_version", "videos", "seconds", "clips", "mean", "skipped"]
    assert data["clips"][0]["real"]["yaw_sd"] is None  # NaN -> null
    assert data["clips"][1]["generated"]["fps"] is None  # inf -> null
    assert data["clips"][1]["generated"]["av_corr"] == pytest.approx(0.17)  # numpy scalar -> float
    assert data["clips"][1]["name"] == "v|02"
    assert data["mean"]["real"]["av_corr"] == pytest.approx(0.31)
    assert data["skipped"] == [{"name": "v03", "reason": "no face in the first 10 s"}]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "report.json", "report.md", "v01_frames.png", "v01_plot.png"]  # no temp files left

    md = (tmp_path / "report.md").read_text(encoding="utf-8")
    assert md.startswith("# ")
    assert "self-reenactment" in md.lower() and "68" in md
    rows = [_cells(line) for line in md.splitlines() if line.startswith("| ")]
    header, body = rows[0], rows[1:]
    assert header == ["clip", *METRICS]
    assert [r[0] for r in body] == ["v01", "v\\|02", "**mean**"]  # a pipe in a name is escaped
    assert all(len(r) == len(METRICS) + 1 for r in body)
    cells = dict(zip(METRICS, body[0][1:]))
    assert cells["av_corr"] == "0.41 → 0.37"
    assert cells["av_offset_frames"] == "+1 → +2"
    assert cells["yaw_sd"] == "– → 3.0"
    assert cells["mouth_corr"] == "0.80"  # generated-only: one value
    assert cells["fps"] == "110.0"
    assert cells["lmd"] == "–"
    mean_cells = dict(zip(METRICS, body[2][1:]))
    assert mean_cells["av_corr"] == "0.31 → 0.27"
    assert mean_cells["av_offset_frames"] == "0 → +1"
    assert mean_cells["fps"] == "–"  # the mean of 110 and inf is inf: null in strict JSON, so "–" here

    assert "v03" in md and "no face in the first 10 s" in md
    for m in METRICS:
        assert f"**{m}**" in md  # legend
    assert "![v01 plot](v01_plot.png)" in md and "![v01 frames](v01_frames.png)" in md
    assert "02_plot" not in md


def test_write_report_without_skips_or_mean(tmp_path: Path) -> None:
    out = tmp_path / "new" / "dir"
    write_report({"clips": _clips()[:1], "skipped": []}, out)
    data = _strict_json((out / "report.json").read_text(encoding="utf-8"))
    assert data["mean"]["generated"]["av_corr"] == pytest.approx(0.37)
    md = (out / "report.md").read_text(encoding="utf-8")
    skipped = md.split("## Skipped clips", 1)[1].split("##", 1)[0]
    assert skipped.strip() == "none"


def test_write_report_replaces_the_old_one(tmp_path: Path) -> None:
    write_report({"clips": _clips(), "mean": mean_metrics(_clips()), "skipped": []}, tmp_path)
    write_report({"clips": [], "mean": {"real": {}, "generated": {}}, "skipped": []}, tmp_path)
    assert _strict_json((tmp_path / "report.json").read_text(encoding="utf-8"))["clips"] == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json", "report.md"]


def _series(name: str, n: int, seed: int, blinks: list[int], gap: slice | None = None) -> ClipSeries:
    rng = np.random.default_rng(seed)
    fps = 25.0
    t = np.arange(n) / fps
    mouth = 0.05 + 0.04 * np.sin(2 * np.pi * 3 * t + seed) ** 2
    angles = np.stack([5 * np.sin(0.7 * t + seed), 3 * np.cos(0.5 * t), rng.normal(0, 0.5, n)], axis=1)
    ear = np.full(n, 0.3) + rng.normal(0, 0.005, n)
    for b in blinks:
        ear[max(0, b - 2): b + 3] = 0.1
    envelope = -40 + 20 * np.abs(np.sin(2 * np.pi * 1.5 * t))
    landmarks = rng.normal(200, 30, (n, 68, 2))
    gaze = rng.normal(0, 0.02, (n, 2))
    if gap is not None:
        for arr in (mouth, angles, ear, landmarks, gaze):
            arr[gap] = np.nan
    return ClipSeries(name=name, times=t, fps=fps, size=(640, 480), landmarks=landmarks, mouth=mouth,
                      angles=angles, ear=ear, blinks=np.asarray(blinks, np.int64), envelope=envelope, gaze=gaze)


def test_plot_clip_writes_a_png(tmp_path: Path) -> None:
    real = _series("v01", 100, 0, blinks=[20, 70])
    gen = _series("v01", 98, 1, blinks=[], gap=slice(30, 45))
    path = plot_path(tmp_path, "v01")
    assert path == tmp_path / "v01_plot.png"
    plot_clip(path, real, gen)
    with Image.open(path) as img:
        assert img.format == "PNG"
        w, h = img.size
    assert 1200 <= w <= 1600 and 850 <= h <= 1200
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v01_plot.png"]


def test_plot_clip_survives_a_faceless_clip(tmp_path: Path) -> None:
    real = _series("v02", 50, 2, blinks=[10])
    gen = _series("v02", 50, 3, blinks=[10, 49, 400], gap=slice(None))  # no face at all; a blink past the end
    plot_clip(tmp_path / "p.png", real, gen)
    assert (tmp_path / "p.png").stat().st_size > 0


def test_contact_sheet_layout() -> None:
    red = np.zeros((240, 320, 3), np.uint8)
    red[..., 0] = 255
    blue = np.zeros((512, 512, 3), np.uint8)  # another size and aspect: fitted into the same cell
    blue[..., 2] = 255
    width, n = 96, 4
    sheet = contact_sheet([red] * n, [blue] * n, width=width)
    assert sheet.dtype == np.uint8 and sheet.ndim == 3 and sheet.shape[2] == 3
    cell_h = 72  # 96 wide at the first real frame's 4:3
    assert sheet.shape[0] == 2 * cell_h + 3 * 4
    assert n * width < sheet.shape[1] < n * width + 200

    def is_red(px: np.ndarray) -> np.ndarray:
        return (px[..., 0] > 200) & (px[..., 1] < 50) & (px[..., 2] < 50)

    def is_blue(px: np.ndarray) -> np.ndarray:
        return (px[..., 2] > 200) & (px[..., 0] < 50) & (px[..., 1] < 50)

    top_mid, bottom_mid = 4 + cell_h // 2, 2 * 4 + cell_h + cell_h // 2
    assert is_red(sheet[top_mid]).sum() == n * width  # top row: real frames, full width each
    assert not is_blue(sheet[: 4 + cell_h]).any()
    assert is_blue(sheet[bottom_mid]).sum() == n * cell_h  # square frames fitted into 96×72 cells
    assert not is_red(sheet[4 + cell_h:]).any()
    # the label strip at the left holds dark text
    label = sheet[:, : sheet.shape[1] - n * (width + 4) - 4]
    assert (label.min(axis=2) < 128).any()


def test_contact_sheet_uneven_rows_and_gray_frames() -> None:
    gray = np.full((100, 200), 128, np.uint8)
    sheet = contact_sheet([gray, gray, gray], [np.zeros((100, 200, 3), np.float32)], width=50)
    assert sheet.shape[0] == 2 * 25 + 12
    assert 3 * 50 < sheet.shape[1] < 3 * 50 + 200
    with pytest.raises(ValueError):
        contact_sheet([], [])


def test_sheet_path() -> None:
    assert sheet_path(Path("/x"), "v07") == Path("/x/v07_frames.png")


# ---------------------------------------------------------------------------------------------
# amplitude ratios


def test_typical_factor_on_hand_made_ratios() -> None:
    assert typical_factor([1.0, 1.0, 1.0]) == pytest.approx(1.0)
    assert typical_factor([0.5, 2.0]) == pytest.approx(2.0)  # halving and doubling do not cancel
    assert typical_factor([0.5]) == pytest.approx(2.0) == typical_factor([2.0])
    assert typical_factor([0.25, 1.0]) == pytest.approx(math.exp(math.log(4) / math.sqrt(2)))
    assert typical_factor([0.5, None, float("nan"), 0.0, 2.0]) == pytest.approx(2.0)  # no log, no vote
    assert typical_factor([]) is None and typical_factor([0.0, None]) is None


def test_clip_ratios_are_generated_over_real() -> None:
    real = {"mouth_open_sd": 2.0, "brow_sd": 0.0, "yaw_sd": None, "smile_sd": 1.0, "pitch_sd": float("nan")}
    gen = {"mouth_open_sd": 1.0, "brow_sd": 0.5, "yaw_sd": 1.0, "smile_sd": 0.0, "pitch_sd": 2.0,
           "av_corr": 0.5}
    r = clip_ratios(real, gen)
    assert list(r) == list(RATIO_METRICS)
    assert r["mouth_open_sd"] == pytest.approx(0.5)
    assert r["smile_sd"] == 0.0  # a face that never smiles: ratio 0
    assert r["brow_sd"] is None and r["yaw_sd"] is None and r["pitch_sd"] is None and r["roll_sd"] is None
    assert "av_corr" not in r


def _ratio_clips() -> list[dict]:
    def clip(name: str, mouth: float, yaw: float | None) -> dict:
        return {"name": name, "real": {}, "generated": {},
                "ratios": {"mouth_open_sd": mouth, "yaw_sd": yaw, "brow_sd": 0.25}}

    return [clip("v01_talk", 0.5, 2.0), clip("v15_grid_bbaf2n_man", 0.4, 0.5), clip("v16_grid_x", 0.6, None),
            clip("v23_woman", 0.5, 1.0)]


def test_clip_group_finds_grid_clips() -> None:
    assert clip_group("v15_grid_bbaf2n_man") == "GRID" and clip_group("GRID_s1") == "GRID"
    assert clip_group("v23_liveportrait_woman") == "other" and clip_group("gridlock_talk") == "other"


def test_ratio_summary_mean_min_and_typical_factor() -> None:
    summary = ratio_summary(_ratio_clips())
    assert set(summary) == {"all", "other", "GRID"}
    mouth = summary["all"]["mouth_open_sd"]
    assert mouth["ratio_mean"] == pytest.approx(0.5) and mouth["ratio_min"] == pytest.approx(0.4)
    assert mouth["ratio_max"] == pytest.approx(0.6) and mouth["clips"] == 4
    yaw = summary["all"]["yaw_sd"]
    assert yaw["clips"] == 3 and yaw["ratio_mean"] == pytest.approx((2.0 + 0.5 + 1.0) / 3)  # None does not vote
    assert yaw["typical_factor"] == pytest.approx(math.exp(math.sqrt(2 * math.log(2) ** 2 / 3)))
    assert summary["all"]["brow_sd"]["typical_factor"] == pytest.approx(4.0)
    assert summary["GRID"]["mouth_open_sd"]["ratio_mean"] == pytest.approx(0.5)
    assert summary["GRID"]["mouth_open_sd"]["clips"] == 2
    assert summary["other"]["yaw_sd"]["ratio_min"] == pytest.approx(1.0)
    assert summary["all"]["roll_sd"] == {"ratio_mean": None, "ratio_min": None, "ratio_max": None,
                                         "typical_factor": None, "clips": 0}


def test_report_with_amplitudes_and_ratios(tmp_path: Path) -> None:
    clips = _ratio_clips()
    for c in clips:
        c["real"] = {"av_corr": 0.4, "mouth_open_sd": 2.0, "brow_sd": 1.2, "yaw_slow_share": 0.8}
        c["generated"] = {"av_corr": 0.5, "mouth_open_sd": 1.0, "brow_sd": 0.3, "yaw_slow_share": 0.5}
    write_report({"clips": clips, "skipped": []}, tmp_path)
    data = _strict_json((tmp_path / "report.json").read_text(encoding="utf-8"))
    assert list(data) == ["clips", "skipped", "mean", "ratio_summary"]
    assert data["clips"][0]["ratios"]["mouth_open_sd"] == 0.5
    assert data["ratio_summary"]["all"]["mouth_open_sd"]["ratio_mean"] == pytest.approx(0.5)

    md = (tmp_path / "report.md").read_text(encoding="utf-8")
    sections = {part.split("\n", 1)[0]: part for part in md.split("\n## ")[1:]}
    results = [_cells(r) for r in sections["Results"].splitlines() if r.startswith("| ")]
    assert results[0] == ["clip", *METRICS]  # amplitudes are not crammed into the first table
    amp = [_cells(r) for r in sections["Amplitude and dynamics"].splitlines() if r.startswith("| ")]
    assert amp[0] == ["clip", "mouth_open_sd", "brow_sd", "yaw_slow_share"]
    assert amp[1] == ["v01_talk", "2.00 → 1.00", "1.20 → 0.30", "0.80 → 0.50"]
    rows = [_cells(r) for r in sections["Generated / real"].splitlines() if r.startswith("| ")]
    assert rows[0] == ["clip", "group", *RATIO_METRICS]
    body = {(r[0], r[1]): dict(zip(RATIO_METRICS, r[2:])) for r in rows[1:]}
    # other clips first, then the GRID ones, each marked
    assert [r[:2] for r in rows[1:5]] == [["v01_talk", "other"], ["v23_woman", "other"],
                                          ["v15_grid_bbaf2n_man", "GRID"], ["v16_grid_x", "GRID"]]
    assert body["v16_grid_x", "GRID"]["yaw_sd"] == "–"
    assert body["**mean**", "all"]["mouth_open_sd"] == "0.50"
    assert body["**min**", "all"]["mouth_open_sd"] == "0.40"
    assert body["**typical factor**", "all"]["brow_sd"] == "×4.00"
    assert body["**mean**", "GRID"]["mouth_open_sd"] == "0.50"
    assert ("**typical factor**", "other") in body
    assert "**ratio_summary**" not in md  # a table, not a "see report.json" bullet
    for m in ALL_METRICS:
        assert f"**{m}**" in md
