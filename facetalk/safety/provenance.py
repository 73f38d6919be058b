"""Provenance metadata: the MP4 says what made it, that it is synthetic, when, and how it is marked.

Tags (MP4 `udta`/`mdta`, shown by ffprobe, exiftool and most players):

    comment             synthetic video made by facetalk 0.1.0; invisible watermark id 3f2a9c1e
    generator           facetalk 0.1.0
    synthetic           true
    creation_time       2026-11-21T09:30:00Z   (UTC; also the movie header's creation time)
    facetalk_watermark  on; id=3f2a9c1e; format=1     or     off (--no-watermark)

Metadata is the weak half of the marking (any re-mux can drop it), which is why the frames carry
the watermark too; `facetalk verify` reads both and cross-checks the id. The `comment` says it all
again in words because it is the tag most tools keep: ffmpeg copies it to a re-encode by default
but drops custom keys unless told `-movflags use_metadata_tags`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone

from facetalk import __version__
from facetalk.safety.payload import Payload

GENERATOR = f"facetalk {__version__}"
WATERMARK_OFF = "off (--no-watermark)"
_COMMENT_ID = re.compile(r"invisible watermark id ([0-9a-f]{8})")


@dataclass(frozen=True)
class Provenance:
    """What a video's tags say about where it came from (None: the tag is absent)."""

    generator: str | None
    synthetic: bool | None
    created: str | None
    watermark: str | None  # the facetalk_watermark tag as written
    comment: str | None

    @property
    def is_facetalk(self) -> bool:
        """The tags claim facetalk made the video."""
        return (bool(self.generator and self.generator.startswith("facetalk")) or self.watermark is not None
                or "made by facetalk" in (self.comment or ""))

    @property
    def watermark_off(self) -> bool:
        return (self.watermark is not None and self.watermark.startswith("off")) or (
            self.watermark is None and "no invisible watermark" in (self.comment or ""))

    @property
    def watermark_id(self) -> str | None:
        """The id the tags say the watermark carries (8 hex digits), if any."""
        for part in (self.watermark or "").split(";"):
            key, _, value = part.strip().partition("=")
            if key == "id" and value:
                return value.strip().lower()
        found = _COMMENT_ID.search(self.comment or "")
        return found.group(1) if found else None


def metadata(payload: Payload | None, created: datetime | None = None) -> dict[str, str]:
    """The tags for a new output; `payload` None records that the watermark was turned off."""
    when = (created or datetime.now(timezone.utc)).astimezone(timezone.utc)
    if payload is None:
        mark, said = WATERMARK_OFF, "no invisible watermark (turned off with --no-watermark)"
    else:
        mark = f"on; id={payload.hex_id}; format={payload.version}"
        said = f"invisible watermark id {payload.hex_id}"
    return {
        "comment": f"synthetic video made by {GENERATOR}; {said}",
        "generator": GENERATOR,
        "synthetic": "true",
        "creation_time": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "facetalk_watermark": mark,
    }


def read(tags: dict[str, str]) -> Provenance:
    """Parse a container's tags (keys compared case-insensitively)."""
    low = {k.lower(): v for k, v in tags.items()}
    synthetic = low.get("synthetic")
    return Provenance(
        generator=low.get("generator"),
        synthetic=None if synthetic is None else synthetic.strip().lower() in ("true", "1", "yes"),
        created=low.get("creation_time"),
        watermark=low.get("facetalk_watermark"),
        comment=low.get("comment"),
    )
