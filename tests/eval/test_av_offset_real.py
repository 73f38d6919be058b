"""The AV-offset measure on real footage with a known answer: the SyncNet example clip has its
sound 3 frames (120 ms) early; the corrected copy has it in sync. Skipped without ../shared/eval."""

from __future__ import annotations

from pathlib import Path

import pytest

from facetalk.eval.dlib_face import DlibFace
from facetalk.eval.measure import find_reference, measure_clip
from facetalk.eval.metrics import MAX_LAG
from facetalk.eval.signals import av_sync


@pytest.fixture(scope="module")
def faces() -> DlibFace:
    return DlibFace.load()


@pytest.mark.parametrize("prefix, offset", [("v03_", 3), ("v04_", 0)])
def test_av_offset_of_the_syncnet_example(shared_eval: Path, faces: DlibFace, prefix: str, offset: int):
    clips = sorted((shared_eval / "video_real").glob(prefix + "*"))
    if not clips:
        pytest.skip(f"no {prefix}* clip in {shared_eval / 'video_real'}")
    reference = find_reference(clips[0], faces)
    assert reference is not None and reference.frame_index == 0
    series = measure_clip(clips[0], clips[0].stem, reference, faces).series
    corr, lag = av_sync(series.mouth, series.envelope, MAX_LAG)
    assert lag is not None and abs(lag - offset) <= 1, f"{clips[0].name}: read {lag}, expected {offset} ± 1"
    assert corr > 0.4
