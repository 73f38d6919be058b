"""`facetalk verify VIDEO`: is this video ours? The watermark in the frames, the tags in the file.

A video is ours when its frames carry the watermark, or when its tags say facetalk made it (a
video rendered with --no-watermark has only the tags). The watermark is what survives
re-encoding, resizing and cropping; the tags are the easy half, gone after many re-muxes.
Exit codes: 0 ours, 1 not ours, 2 unreadable.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from facetalk.errors import FacetalkError
from facetalk.media.video import read_video_tags, sample_video_frames
from facetalk.safety.detect import (PAYLOAD_THRESHOLD, THRESHOLD, Accumulator, Detection, detect_in,
                                    false_alarm_chance)
from facetalk.safety.provenance import Provenance, read

MAX_FRAMES = 96  # frames looked at: enough to accumulate the mark, a few seconds at most


@dataclass(frozen=True)
class Verdict:
    path: str
    detection: Detection
    provenance: Provenance

    @property
    def ours(self) -> bool:
        return self.detection.found or self.provenance.is_facetalk

    @property
    def exit_code(self) -> int:
        return 0 if self.ours else 1

    @property
    def notes(self) -> list[str]:
        """What a reader should know beyond the two verdicts: conflicts and their likely cause."""
        d, p = self.detection, self.provenance
        notes = []
        if d.found and d.payload is None:
            notes.append("the watermark is present but too damaged to read its id")
        tag_id = p.watermark_id
        if d.payload is not None and tag_id is not None and d.payload.hex_id != tag_id:
            notes.append(f"the watermark's id {d.payload.hex_id} differs from the tags' id {tag_id}: "
                         "the tags were edited or copied from another file")
        if d.found and not p.is_facetalk:
            notes.append("the file's tags say nothing about facetalk (stripped by re-encoding or re-muxing)")
        if not d.found and p.watermark_off:
            notes.append("the tags say the watermark was turned off (--no-watermark) when this was made")
        elif not d.found and p.is_facetalk:
            notes.append("the tags claim facetalk, but the frames carry no watermark: the video was "
                         "edited beyond what the watermark survives, or the tags were forged")
        return notes


def verify(path: str | os.PathLike[str], max_frames: int = MAX_FRAMES) -> Verdict:
    """Read the tags and up to `max_frames` frames spread over the video, and judge.

    Raises FacetalkError (exit code 2) when the file is missing or not a readable video.
    """
    tags = read_video_tags(path)
    acc = Accumulator()
    try:
        for frame in sample_video_frames(path, max_frames):
            acc.add(frame)
    except ValueError as exc:  # frames of changing size
        raise FacetalkError(f"cannot check '{path}': {exc}") from None
    if acc.frames == 0:
        raise FacetalkError(f"cannot check '{path}': no video frame could be decoded; pass a playable video")
    return Verdict(str(path), detect_in(acc), read(tags))


def as_dict(v: Verdict) -> dict[str, object]:
    """The verdict as plain JSON-ready data (`facetalk verify --json`)."""
    d, p = v.detection, v.provenance
    return {
        "path": v.path,
        "ours": v.ours,
        "watermark": {
            "detected": d.found,
            "confidence": round(d.confidence, 6),
            "false_alarm_chance": float(f"{false_alarm_chance(d.score, d.payload is not None):.3g}"),
            "score": round(d.score, 2),
            "threshold": THRESHOLD,
            "threshold_with_payload": PAYLOAD_THRESHOLD,
            "payload": None if d.payload is None else {"version": d.payload.version, "id": d.payload.hex_id},
            "scale": round(d.scale, 4),
            "frames": d.frames,
        },
        "metadata": {
            "facetalk": p.is_facetalk,
            "generator": p.generator,
            "synthetic": p.synthetic,
            "creation_time": p.created,
            "watermark": p.watermark,
            "comment": p.comment,
        },
        "notes": v.notes,
    }


def describe(v: Verdict) -> list[str]:
    """The verdict as lines for a person."""
    d, p = v.detection, v.provenance
    if d.found:
        what = f"id {d.payload.hex_id}, format {d.payload.version}" if d.payload else "id unreadable"
        rule = (f"threshold {THRESHOLD:g}" if d.score >= THRESHOLD else
                f"under {THRESHOLD:g} but over {PAYLOAD_THRESHOLD:g} with a payload that passes its checksum")
        mark = (f"yes ({what}); confidence {_percent(d.confidence)}, score {d.score:.1f} ({rule}; "
                f"chance of this on unmarked video {false_alarm_chance(d.score, d.payload is not None):.1g})")
        if abs(d.scale - 1) > 0.01:
            mark += f", video resized to {d.scale:.2f}× the original"
    else:
        mark = f"no (score {d.score:.1f}, threshold {THRESHOLD:g}; unmarked video scores about 4.5 to 6)"
    said = [x for x in (p.generator, "synthetic" if p.synthetic else None,
                        f"created {p.created}" if p.created else None,
                        f"watermark {p.watermark}" if p.watermark else None) if x]
    if p.is_facetalk:
        tags = ", ".join(said) if said else f"comment: {p.comment}"
    else:
        tags = "nothing about facetalk" + (f" (comment: {p.comment})" if p.comment else "")
    lines = [f"{v.path}: {'made by facetalk' if v.ours else 'not made by facetalk, as far as can be told'}",
             f"  watermark: {mark}",
             f"  metadata:  {tags}"]
    return lines + [f"  note: {n}" for n in v.notes]


def _percent(c: float) -> str:
    return ">99.9999%" if c > 0.999999 else f"{100 * c:.4f}%"
