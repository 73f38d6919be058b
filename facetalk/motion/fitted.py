"""The generator's constants that are fitted to real speakers, read from `fitted.json`.

They are written by `tools/fit_motion.py`, which encodes the real talking clips of
`../shared/eval/video_real` with `motion.encode` into the very coefficients the generator writes
and solves for the values that make the generated distributions match the real ones (per-viseme
mouth targets through the generator's own coarticulation, loudness gains, expression and head
amplitudes). Rerun it when clips are added; nothing here is tuned by hand.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources

import numpy as np

from facetalk.motion.visemes import MOUTH, VISEME_NAMES


@dataclass(frozen=True)
class Fitted:
    visemes: np.ndarray  # (V, P) mouth targets, VISEME_NAMES x MOUTH
    mouth_gain: tuple[float, float]  # (floor, slope): jaw scale = floor + slope * loudness
    coarticulation: tuple[float, float]  # (reach_s, anticipation_s) of visemes.viseme_weights
    head: dict[str, dict[str, float] | float]  # drift_sd, turn_sd per angle; nod_deg, engage_s, power
    expression: dict[str, float]  # smile, smile_chance, brow, brow_floor, brow_hold_s, wide
    closure_db: float = 0.0  # a dip this far under the speech peak shuts the lips (0: never; mouth.closure_gate)


def parse(data: dict) -> Fitted:
    table = np.array([[float(data["visemes"][v][p]) for p in MOUTH] for v in VISEME_NAMES])
    m = data["mouth"]
    return Fitted(table, (float(m["gain_floor"]), float(m["gain_slope"])),
                  (float(m["reach_s"]), float(m["anticipation_s"])), data["head"], data["expression"],
                  float(m.get("closure_db", 0.0)))


@cache
def fitted() -> Fitted:
    """The shipped constants (read once; the object is immutable)."""
    text = resources.files("facetalk.motion").joinpath("fitted.json").read_text()
    return parse(json.loads(text))
