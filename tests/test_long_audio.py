"""An hour of audio streams through the audio and motion stages in flat memory.

Peak memory is measured in a fresh process (its maximum resident set) for five minutes and for an
hour of audio: holding the decoded hour would add 230 MB; streaming adds only the per-frame arrays.
"""

from __future__ import annotations

import subprocess
import sys
import wave
from pathlib import Path

import numpy as np

RATE = 8000
PROBE = """
import resource, sys
from facetalk.motion.controls import Controls
from facetalk.motion.generate import generate
from facetalk.pipeline import features_from_audio
track = generate(features_from_audio(sys.argv[1], fps=25.0), Controls(seed=0))
jaw = track.column("jawOpen")
print(len(track), float(jaw.max()), float(jaw[-1500:].max()), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def _write(path: Path, minutes: int) -> None:
    """An 8 kHz WAV of syllable-like tone bursts, written a minute at a time."""
    t = np.arange(60 * RATE) / RATE
    envelope = (np.sin(2 * np.pi * 3.0 * t) > 0).astype(np.float64)
    minute = (0.3 * np.sin(2 * np.pi * 220 * t) * envelope * 32767).astype("<i2").tobytes()
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        for _ in range(minutes):
            w.writeframes(minute)


def _run(path: Path) -> tuple[int, float, float, int]:
    out = subprocess.run([sys.executable, "-c", PROBE, str(path)], capture_output=True, text=True, check=True)
    n, jaw_max, jaw_end, rss_kb = out.stdout.split()
    return int(n), float(jaw_max), float(jaw_end), int(rss_kb)


def test_an_hour_of_audio_streams_in_flat_memory(tmp_path: Path) -> None:
    short, hour = tmp_path / "short.wav", tmp_path / "hour.wav"
    _write(short, 5)
    _write(hour, 60)
    n_short, _, short_end, rss_short = _run(short)
    n_hour, jaw_max, jaw_end, rss_hour = _run(hour)
    assert n_short == 5 * 60 * 25 and n_hour == 60 * 60 * 25
    assert jaw_max > 0.1 and jaw_end > 0.6 * short_end  # the bursts were heard to the very end, as after 5 minutes
    growth_mb = (rss_hour - rss_short) / 1024
    assert growth_mb < 60, f"memory grew by {growth_mb:.0f} MB from 5 minutes to an hour of audio"
