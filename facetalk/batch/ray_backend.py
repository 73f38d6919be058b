"""The Ray backend: each job a Ray task (`num_cpus=1`), on a local instance or an existing cluster.

Ray retries a task whose worker process or node is lost (`max_retries`); a job that fails on its
own (no face, bad audio) returns its reason instead of raising, so it is never retried. The driver
keeps a bounded number of tasks in flight (`ray.wait`), so a batch of any size holds little memory.
Worker processes are reused between tasks, so the per-process rig cache of facetalk.batch.worker
works here too. Inputs and outputs must be at paths every node can reach (shared storage), and
facetalk must be installed on every node.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator

from facetalk.batch.jobs import Job
from facetalk.batch.worker import THREAD_ENV
from facetalk.errors import FacetalkError

LOCAL = "local"  # ray_address meaning: start a local instance (or use the one this process has)


def _ray_job(job: Job) -> dict[str, object]:
    import ray

    from facetalk.batch.worker import run_job

    result = run_job(job)
    result["node"] = ray.get_runtime_context().get_node_id()[:12]
    return result


def import_ray():  # noqa: ANN201
    try:
        import ray
    except ImportError:
        raise FacetalkError('--ray needs Ray, which is not installed; install it with: pip install "facetalk[ray]" '
                            "(or run without --ray: a local process pool)") from None
    return ray


class RayPool:
    name = "ray"

    def __init__(self, address: str | None = LOCAL, workers: int | None = None, retries: int = 2) -> None:
        ray = import_ray()
        self.retries = retries
        self.owned = False
        if not ray.is_initialized():
            options = {"include_dashboard": False, "logging_level": logging.WARNING}
            try:
                if address in (None, LOCAL):
                    ray.init(num_cpus=workers, **options)
                else:
                    ray.init(address=address, logging_level=logging.WARNING)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                where = "start a local Ray instance" if address in (None, LOCAL) else f"reach Ray at {address!r}"
                raise FacetalkError(f"cannot {where}: {str(exc).splitlines()[0] if str(exc) else exc}; "
                                    "check the address (ray status on the head node shows it)") from None
            self.owned = True
        cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
        self.workers = workers or cpus
        self.in_flight = workers or 2 * cpus  # back-pressure: never more tasks than this queued
        env = {**THREAD_ENV, **{k: v for k, v in os.environ.items() if k.startswith("FACETALK_")}}
        self._task = ray.remote(_ray_job).options(num_cpus=1, max_retries=retries, retry_exceptions=False,
                                                  runtime_env={"env_vars": env})
        self._running: dict[object, Job] = {}

    def results(self, jobs: Iterable[Job]) -> Iterator[tuple[Job, dict[str, object]]]:
        import ray

        queue = iter(jobs)
        running = self._running
        more = True
        while more or running:
            while more and len(running) < self.in_flight:
                job = next(queue, None)
                if job is None:
                    more = False
                    break
                running[self._task.remote(job)] = job
            if not running:
                break
            ready, _ = ray.wait(list(running), num_returns=1)
            for ref in ready:
                job = running.pop(ref)
                try:
                    result = ray.get(ref)
                except ray.exceptions.RayError as exc:
                    first = next((s for s in str(exc).splitlines() if s.strip()), "")
                    result = {"status": "failed", "error": f"Ray lost the job after {self.retries + 1} tries: "
                                                           f"{type(exc).__name__}: {first[:200]}"}
                yield job, result

    def close(self, interrupted: bool = False) -> None:
        import ray

        try:
            if interrupted and self._running:
                for ref in self._running:  # KeyboardInterrupt inside the task: its writer cleans up
                    ray.cancel(ref)
                ray.wait(list(self._running), num_returns=len(self._running), timeout=10)
        finally:
            self._running.clear()
            if self.owned:
                ray.shutdown()
