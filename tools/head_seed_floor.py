"""How far apart the head's spread lands by chance alone: the floor under the evaluation's head
"typical factor" (generated / real spread per clip, exp of the RMS log ratio across clips).

For every real clip's sound, the head layer runs with the shipped constants under N seeds; the sd
over seeds of log(spread) per clip, RMS over the clips, is how far a generator that is right on
average still lands from its own mean on one seed. Compare it with the evaluation's spread of log
ratios: only what exceeds this can be fitted away.

    .venv/bin/python tools/head_seed_floor.py [--videos ../shared/eval/video_real] [--seeds 16]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))

import fit_motion  # noqa: E402
from facetalk.motion.fitted import fitted  # noqa: E402
from facetalk.motion.head import ANGLES, HeadMotion  # noqa: E402
from facetalk.motion.rhythm import RhythmTracker  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--videos", type=Path, default=ROOT.parent / "shared" / "eval" / "video_real")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/facetalk_fit_cache"))
    ap.add_argument("--seeds", type=int, default=16)
    args = ap.parse_args(argv)
    if not args.videos.is_dir():
        print(f"head_seed_floor: no clips at {args.videos}; nothing to measure")
        return 0
    head = fitted().head
    spreads = []
    for clip in fit_motion.gather(args.videos, args.cache):
        f = clip.features
        rhythm = RhythmTracker(fit_motion.FPS, head).run(f.active)
        logs = np.log([[HeadMotion(fit_motion.FPS, np.random.default_rng(seed), head)
                        .run(rhythm, f.loudness, float(f.loudness[-1]))[k].std() for k in ANGLES]
                       for seed in range(args.seeds)])
        spreads.append(logs.std(axis=0))
        print(f"{clip.name[:32]:32s} sd of log spread over {args.seeds} seeds: "
              + ", ".join(f"{k} {v:.2f}" for k, v in zip(ANGLES, spreads[-1])))
    rms = np.sqrt(np.mean(np.square(spreads), axis=0))
    print("RMS over clips: " + ", ".join(f"{k} {v:.2f} (typical factor from the seed alone x{np.exp(v):.2f})"
                                         for k, v in zip(ANGLES, rms)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
