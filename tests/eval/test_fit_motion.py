"""tools/fit_motion.py runs on real clips from ../shared (three GRID sentences, one held out) and
fits every part: the coarticulation timing on its grid, the head and the expressions. Skipped
without ../shared/eval."""

from __future__ import annotations

import re
import sys
from pathlib import Path

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
    assert re.search(r"^head: \{'drift_sd'", out, re.M) and re.search(r"^expressions: \{'smile'", out, re.M)
    assert "held out" in out.split("AFTER")[1]  # the held-out clip is reported on its own
    sys.modules.pop("fit_motion", None)
