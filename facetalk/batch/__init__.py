"""Many videos at once: `facetalk batch JOBS --out DIR`, on a local process pool or a Ray cluster.

    from facetalk.batch import run
    report = run("jobs.csv", "videos/", workers=2)              # local pool, one process per core
    report = run(rows, "videos/", ray_address="auto")            # an existing Ray cluster
    report.ok, report.results                                    # one dict per job (as results.jsonl)

Modules: jobs (jobs files, validation), worker (one job in a worker process, rig cache), local
(process pool), ray_backend (Ray tasks), partial (leftover and finished outputs), runner (the driver),
cli (`facetalk batch`). Importing this package loads neither Ray nor the rendering stages.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from facetalk.batch.jobs import BadJobs, Job
    from facetalk.batch.runner import BatchReport, run

__all__ = ["BadJobs", "BatchReport", "Job", "run"]


def __getattr__(name: str) -> Any:
    if name in ("BadJobs", "Job"):
        from facetalk.batch import jobs

        return getattr(jobs, name)
    if name in ("BatchReport", "run"):
        from facetalk.batch import runner as module

        return getattr(module, name)
    raise AttributeError(name)
