"""The shared real clips of every kind join the evaluation: GRID's MPEG-1/MP2 `.mpg` files and the
30 fps expressive v23 are found, read and measured. Skipped without ../shared/eval."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from facetalk.eval.dlib_face import DlibFace
from facetalk.eval.measure import find_reference, measure_clip
from facetalk.eval.metrics import clip_metrics
from facetalk.eval.report import clip_group
from facetalk.eval.run import SILENT_DBFS, find_videos, loudest_dbfs
from facetalk.media.audio import read_audio


@pytest.fixture(scope="module")
def faces() -> DlibFace:
    return DlibFace.load()


def _clip(shared_eval: Path, prefix: str) -> Path:
    clips = sorted((shared_eval / "video_real").glob(prefix + "*"))
    if not clips:
        pytest.skip(f"no {prefix}* clip in {shared_eval / 'video_real'}")
    return clips[0]


def test_grid_and_expressive_clips_are_listed(shared_eval: Path) -> None:
    names = [p.name for p in find_videos(shared_eval / "video_real")]
    grid = [n for n in names if n.endswith(".mpg")]
    if not grid:
        pytest.skip("no GRID clips in the shared folder")
    assert all(clip_group(Path(n).stem) == "GRID" for n in grid)


@pytest.mark.parametrize("prefix", ["v15_", "v23_"])
def test_clip_is_read_and_measured(shared_eval: Path, faces: DlibFace, prefix: str) -> None:
    path = _clip(shared_eval, prefix)
    reference = find_reference(path, faces)
    assert reference is not None and reference.frame_index == 0
    assert loudest_dbfs(read_audio(path)) > SILENT_DBFS
    measured = measure_clip(path, path.stem, reference, faces)
    assert np.isfinite(measured.series.mouth).mean() > 0.9
    m = clip_metrics(measured)
    for name in ("mouth_open_sd", "lip_dynamics", "brow_sd", "smile_sd", "eye_open_sd", "yaw_slow_share"):
        assert m[name] is not None and m[name] > 0, name
    if prefix == "v15_":  # a read sentence with silence before and after it
        assert m["silent_lip_mad"] is not None
