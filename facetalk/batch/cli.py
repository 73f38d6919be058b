"""`facetalk batch JOBS --out DIR`: the command's body (the parser is in facetalk/cli.py)."""

from __future__ import annotations

import argparse
import sys

from facetalk.batch.jobs import BadJobs
from facetalk.batch.runner import run


def batch_command(args: argparse.Namespace) -> int:
    """0 when every job succeeded, 1 when some failed; bad rows (without --skip-bad) raise BadJobs
    after each has been said on its own line."""
    try:
        report = run(args.jobs, args.out, workers=args.workers, ray_address=args.ray, retries=args.retries,
                     skip_bad=args.skip_bad, progress=not args.quiet and sys.stderr.isatty(),
                     log=lambda line: print(f"facetalk batch: {line}", file=sys.stderr))
    except BadJobs as exc:
        for problem in exc.problems[:50]:
            print(f"facetalk: error: {problem}", file=sys.stderr)
        if len(exc.problems) > 50:
            print(f"facetalk: error: ... and {len(exc.problems) - 50} more", file=sys.stderr)
        raise
    print(report.summary())
    if not report.ok:
        print(f"facetalk: error: {report.failed} of {len(report.results)} jobs failed; their reasons are in "
              f"{report.results_path}", file=sys.stderr)
        return 1
    return 0
