"""User controls of the generated motion; one dataclass, one source of defaults."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Controls:
    """How the generated face should behave.

    seed: the same seed and audio give the same motion.
    motion_intensity: scales head motion (0 = still head, 1 = natural, 2 = lively).
    blink: whether the eyes blink.
    """

    seed: int = 0
    motion_intensity: float = 1.0
    blink: bool = True

    def __post_init__(self) -> None:
        if not 0.0 <= self.motion_intensity <= 3.0:
            raise ValueError(f"motion_intensity must be within 0..3, got {self.motion_intensity}")
