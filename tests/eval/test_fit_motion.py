"""tools/fit_motion.py runs on real clips from ../shared (three GRID sentences, one held out) and
fits every part: the coarticulation timing and the closure level on their grids, the head and the expressions (skipped
without ../shared/eval); its model of how the evaluation reads a rendered head, on synthetic series."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
CLIPS = ("v15_grid_bbaf2n_man", "v20_grid_pwij3p_man_grey", "v21_grid_sbia1a_man")  # v21 is held out


def test_the_fit_runs_on_real_clips(shared_eval: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    videos = tmp_path / "videos"
    videos.mkdir()
    for stem in CLIPS:
        found = sorted((shared_eval / "video_real").glob(stem + ".*"))
        if not found:
            pytest.skip(f"{stem} is not in {shared_eval / 'video_real'}")
        (videos / found[0].name).symlink_to(found[0])
    monkeypatch.syspath_prepend(str(ROOT / "tools"))
    import fit_motion

    assert fit_motion.main(["--videos", str(videos), "--cache", str(tmp_path / "cache")]) == 0
    out = capsys.readouterr().out
    assert "2 clips to fit, 1 held out" in out
    reach, anticipation = map(float, re.search(r"coarticulation reach ([\d.]+) s, anticipation ([\d.]+) s$", out,
                                               re.M).groups())
    assert reach in fit_motion.COART_REACH_S and anticipation in fit_motion.COART_ANTICIPATION_S
    closure = float(re.search(r"the lips shut in dips of the voice ([\d.]+) dB under the peak$", out, re.M).group(1))
    assert closure in fit_motion.CLOSURE_DB
    assert re.search(r"^head: \{'drift_sd'", out, re.M) and re.search(r"^expressions: \{'smile'", out, re.M)
    assert "held out" in out.split("AFTER")[1]  # the held-out clip is reported on its own
    sys.modules.pop("fit_motion", None)


def _fit_motion(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.syspath_prepend(str(ROOT / "tools"))
    import fit_motion

    return fit_motion


def test_the_reading_model_recovers_a_known_slope_and_floor(monkeypatch: pytest.MonkeyPatch) -> None:
    fit_motion = _fit_motion(monkeypatch)
    rng = np.random.default_rng(1)
    commanded = np.column_stack([np.sin(np.linspace(0, 20, 2000)) * a for a in (3.0, 2.0, 1.0)])
    noise = rng.normal(0.0, 1.0, commanded.shape) * np.array([0.4, 0.8, 0.2])
    read = -commanded * np.array([0.5, 1.0, 1.2]) + 7.0 + noise  # dlib's yaw runs the other way
    read[::50, 0] = np.nan  # frames where no face was found
    slope, floor = fit_motion.reading_model(commanded, read)
    np.testing.assert_allclose(slope, [0.5, 1.0, 1.2], atol=0.03)
    np.testing.assert_allclose(floor, [0.4, 0.8, 0.2], rtol=0.06)
    reading = fit_motion.Reading(slope, floor, np.ones(3))
    np.testing.assert_allclose(reading.of(np.zeros(3)), floor)  # a still head reads its floor
    np.testing.assert_allclose(reading.of(np.full(3, 100.0)), 100.0 * slope, rtol=1e-3)


def test_the_head_amplitude_fitted_through_the_reading_matches_the_real_spread(monkeypatch) -> None:
    fit_motion = _fit_motion(monkeypatch)
    slope = np.array([[0.5, 1.0, 1.0], [1.0, 1.0, 1.0], [1.5, 1.0, 1.0]])
    floor = np.array([[0.3, 0.2, 0.1], [0.3, 0.2, 0.1], [0.3, 0.2, 0.1]])
    gen = np.array([[2.0, 1.0, 1.0], [1.0, 1.0, 1.0], [0.5, 1.0, 1.0]])  # unit-amplitude spreads
    amplitude = np.array([2.5, 3.0, 0.5])
    real = np.hypot(slope * gen * amplitude, floor)  # what a head of `amplitude` reads as
    readings = [fit_motion.Reading(s, f, r) for s, f, r in zip(slope, floor, real)]
    scale, rms = fit_motion._amplitudes(gen, readings)
    np.testing.assert_allclose(scale, amplitude, rtol=1e-3)
    assert rms < 1e-3
    # the floor is not motion: a real head read at its floor asks for (almost) none
    still = [fit_motion.Reading(s, f, f * 1.0001) for s, f in zip(slope, floor)]
    assert (fit_motion._amplitudes(gen, still)[0] < 0.1).all()


def test_a_swept_turn_of_the_built_in_portrait_reads_as_a_turn(monkeypatch: pytest.MonkeyPatch) -> None:
    """The slope of the evaluation's reading on a known sweep: every angle of a real face reads as a
    turn of the same order as the one commanded (dlib reads a rendered turn at 0.3-1.4x)."""
    from facetalk.eval.dlib_face import DlibFace

    fit_motion = _fit_motion(monkeypatch)
    slopes = fit_motion.swept_slopes(ROOT / "facetalk" / "assets" / "portrait.png", DlibFace.load())
    assert slopes.shape == (3,) and np.all((slopes > 0.25) & (slopes < 2.0)), slopes


def test_the_calibration_centres_the_median_clip(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Two tight-lipped speakers read far over (as v08 and v16 do) must not pull every other clip
    under: the factor brings the median clip to 1, clips outside the fit and missing ratios aside."""
    fit_motion = _fit_motion(monkeypatch)
    ratios = [0.7, 0.8, 0.8, 0.9, 0.9, 2.5, 3.0]
    assert fit_motion.typical_factor(ratios) == pytest.approx(1 / 0.9)
    assert fit_motion.typical_factor([0.5, 2.0]) == pytest.approx(1.0)  # the median of logs: the geometric middle
    assert fit_motion.typical_factor([]) == 1.0
    clips = [{"name": f"c{i}", "ratios": {"mouth_open_sd": r, "brow_sd": None}} for i, r in enumerate(ratios)]
    clips.append({"name": "held", "ratios": {"mouth_open_sd": 0.1}})
    report = tmp_path / "report.json"
    report.write_text(json.dumps({"clips": clips}))
    factors = fit_motion.calibration(report, [c["name"] for c in clips[:-1]])
    assert factors["mouth_open_sd"] == pytest.approx(1 / 0.9)
    assert factors["brow_sd"] == 1.0  # no ratio read: left as fitted
