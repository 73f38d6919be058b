"""Everything facetalk adds to one output: the one object the writers and the live stream use.

    marks = Marks.new(watermark=True, label=False)   # once per output (file or stream session)
    frame = marks.apply(frame)                        # every frame, just before it leaves facetalk
    tags = marks.metadata()                           # for a file: provenance tags (provenance.py)

The watermark is on unless the caller turns it off explicitly, and turning it off is recorded in
the tags, so it cannot be skipped by accident.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from facetalk.safety import provenance
from facetalk.safety.label import burn_label
from facetalk.safety.payload import Payload
from facetalk.safety.watermark import Watermarker


@dataclass(frozen=True)
class Marks:
    """The watermark (with this output's payload, or None when turned off) and the visible label."""

    payload: Payload | None
    label: bool = False
    _marker: Watermarker | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_marker", None if self.payload is None else Watermarker(self.payload))

    @staticmethod
    def new(watermark: bool = True, label: bool = False) -> Marks:
        """Marks for a new output, with a fresh random watermark id."""
        return Marks(Payload.new() if watermark else None, label)

    @property
    def watermark_id(self) -> str | None:
        return None if self.payload is None else self.payload.hex_id

    def apply(self, frame: np.ndarray) -> np.ndarray:
        """The frame as it must leave facetalk: label burned in (if asked), then the watermark."""
        if self.label:
            frame = burn_label(frame)
        return frame if self._marker is None else self._marker.mark(frame)

    def metadata(self, created: datetime | None = None) -> dict[str, str]:
        """Provenance tags for a file carrying these frames."""
        return provenance.metadata(self.payload, created)
