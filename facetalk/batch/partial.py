"""Outputs on disk: leftovers of killed workers, and whether an existing output is a finished one.

Writers put a video together in `.NAME.partial-XXXX.mp4` beside NAME and rename it when done
(media._files.create_partial_file), and remove it on any error or signal they see. A process killed
outright (SIGKILL, out of memory, a lost node) cannot, so the batch removes a job's partial files
itself: before the batch starts, and after a job's worker is lost.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path


def remove_partials(outputs: Iterable[str | os.PathLike[str]]) -> int:
    """Delete the partial files of these outputs (each folder listed once); how many there were."""
    by_folder: dict[Path, set[str]] = {}
    for output in outputs:
        p = Path(output)
        by_folder.setdefault(p.parent, set()).add(p.name)
    removed = 0
    for folder, names in by_folder.items():
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            name, sep, _ = entry.name.partition(".partial-")
            if sep and name.startswith(".") and name[1:] in names:
                try:
                    os.unlink(entry.path)
                    removed += 1
                except OSError:
                    pass
    return removed


def finished_output(path: str | os.PathLike[str]) -> dict[str, object] | None:
    """If `path` is a finished facetalk video, what it holds (frames, seconds, watermark id), else None.

    A cheap check, not `facetalk verify` (which decodes up to 96 frames to find the watermark):
    the file opens as a video, its header counts frames, and its provenance tags say facetalk made it.
    Outputs are only ever renamed into place once complete, so a file that passes is a whole one.
    """
    from facetalk.errors import FacetalkError
    from facetalk.media.video import probe_video, read_video_tags
    from facetalk.safety.provenance import read

    p = Path(path)
    if not p.is_file():
        return None
    try:
        tags = read(read_video_tags(p))
        info = probe_video(p)
    except (FacetalkError, OSError, ValueError):
        return None
    if not tags.is_facetalk or info.n_frames < 1 or info.duration <= 0:
        return None
    return {"frames": info.n_frames, "video_seconds": round(info.duration, 3), "width": info.width,
            "height": info.height, "watermark_id": tags.watermark_id}
