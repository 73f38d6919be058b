"""How far apart the head's spread lands by chance alone: the floor under the evaluation's head
"typical factor" (generated / real spread per clip, exp of the RMS log ratio across clips).

For every real clip's sound, the generator runs with the shipped constants under N seeds (as
`--seed` would); the sd over seeds of log(spread) per clip, RMS over the clips, is how far a
generator that is right on average still lands from its own mean on one seed. Compare it with the
evaluation's spread of log ratios: only what exceeds this can be fitted away.

With `--report REPORT` (the `report.json` of a `facetalk eval` run of the same constants, seed 0)
it also says what the evaluation would read on other seeds: each clip's spreads are carried into
the evaluation's measure by the factor that run saw on it (dlib's reading of the rendered seed-0
video over the generator's own), and the typical factor is taken per seed. That splits the
evaluation's figure into the part the voice would have to predict (the per-clip mean log ratio
over seeds) and the part that is the seed's luck.

    .venv/bin/python tools/head_seed_floor.py [--videos ../shared/eval/video_real] [--seeds 16] [--report R]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))

import fit_motion  # noqa: E402
from facetalk.motion.controls import Controls  # noqa: E402
from facetalk.motion.generate import generate  # noqa: E402
from facetalk.motion.head import ANGLES  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--videos", type=Path, default=ROOT.parent / "shared" / "eval" / "video_real")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/facetalk_fit_cache"))
    ap.add_argument("--seeds", type=int, default=16)
    ap.add_argument("--report", type=Path, help="report.json of a facetalk eval run of these constants")
    args = ap.parse_args(argv)
    if not args.videos.is_dir():
        print(f"head_seed_floor: no clips at {args.videos}; nothing to measure")
        return 0
    evaluated = {c["name"]: c for c in json.loads(args.report.read_text())["clips"]} if args.report else {}
    spreads, ratios = [], []
    for clip in fit_motion.gather(args.videos, args.cache):
        track = [generate(clip.features, Controls(seed=seed)) for seed in range(args.seeds)]
        sd = np.array([[t.column(k).std() for k in ANGLES] for t in track])  # (seeds, angles)
        spreads.append(np.log(sd).std(axis=0))
        line = f"{clip.name[:32]:32s} sd of log spread over {args.seeds} seeds: " + ", ".join(
            f"{k} {v:.2f}" for k, v in zip(ANGLES, spreads[-1]))
        e = evaluated.get(clip.name)
        if e:
            seen = np.array([e["generated"][f"{k}_sd"] for k in ANGLES]) / sd[0]  # the evaluation's reading
            real = np.array([e["real"][f"{k}_sd"] for k in ANGLES])
            ratios.append(np.log(sd * seen / real))
            line += " | mean log ratio " + ", ".join(f"{k} {v:+.2f}" for k, v in zip(ANGLES, ratios[-1].mean(0)))
        print(line)
    rms = np.sqrt(np.mean(np.square(spreads), axis=0))
    print("RMS over clips: " + ", ".join(f"{k} {v:.2f} (typical factor from the seed alone x{np.exp(v):.2f})"
                                         for k, v in zip(ANGLES, rms)))
    if ratios:
        logs = np.array(ratios)  # (clips, seeds, angles)
        per_seed = np.exp(np.sqrt(np.mean(logs ** 2, axis=0)))
        voice = np.exp(np.sqrt(np.mean(logs.mean(axis=1) ** 2, axis=0)))
        print(f"The evaluation's typical factor over {args.seeds} seeds ({len(logs)} clips of {args.report}): "
              + "; ".join(f"{k} median x{np.median(per_seed[:, j]):.2f} (p10-p90 x{np.percentile(per_seed[:, j], 10):.2f}"
                          f"-{np.percentile(per_seed[:, j], 90):.2f}, seed 0 x{per_seed[0, j]:.2f}), "
                          f"from the per-clip means alone x{voice[j]:.2f}" for j, k in enumerate(ANGLES)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
