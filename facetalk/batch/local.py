"""The local backend: a process pool sized to the cores, one thread per worker.

Processes are spawned (not forked: the parent may hold threads and half-initialised libraries)
with the thread-limiting variables already in their environment. At most one job per worker is in
flight, so when a worker dies (killed, out of memory) and takes the pool down, the jobs that were
running are known: they are retried on a fresh pool up to `retries` times, then recorded as failed.
"""

from __future__ import annotations

import multiprocessing
import os
from collections import Counter, deque
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager

from facetalk.batch.jobs import Job
from facetalk.batch.partial import remove_partials
from facetalk.batch.worker import THREAD_ENV, init_pool_worker, run_job


def default_workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    """`values` in os.environ while the body runs (spawned workers copy the environment)."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


class LocalPool:
    name = "local"

    def __init__(self, workers: int | None = None, retries: int = 2) -> None:
        self.workers = workers or default_workers()
        self.retries = retries
        self._executor: ProcessPoolExecutor | None = None
        self._env = _environment(THREAD_ENV)
        self._env.__enter__()

    def _pool(self) -> ProcessPoolExecutor:
        if self._executor is None:
            self._executor = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"),
                                                 initializer=init_pool_worker)
        return self._executor

    def results(self, jobs: Iterable[Job]) -> Iterator[tuple[Job, dict[str, object]]]:
        """(job, result) as each finishes, in the order they finish."""
        queue = deque(jobs)
        tries: Counter[int] = Counter()
        running: dict[Future, Job] = {}
        while queue or running:
            lost: list[Job] = []
            while queue and len(running) < self.workers:
                job = queue.popleft()
                tries[job.line] += 1
                try:
                    running[self._pool().submit(run_job, job)] = job
                except BrokenProcessPool:
                    lost.append(job)
                    break
            if running and not lost:
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    job = running.pop(future)
                    try:
                        result = future.result()
                    except BrokenProcessPool:
                        lost.append(job)
                        continue
                    except Exception as exc:  # e.g. a job that cannot be pickled
                        result = {"status": "failed", "error": f"internal error: {type(exc).__name__}: {exc}"}
                    yield job, {**result, "attempts": tries[job.line]}
            if lost:  # the pool is broken: every job still running went down with it
                lost += running.values()
                running.clear()
                self._restart()
                for job in reversed(lost):
                    remove_partials([job.output])
                    if tries[job.line] <= self.retries:
                        queue.appendleft(job)
                    else:
                        yield job, {"status": "failed", "attempts": tries[job.line],
                                    "error": f"its worker process died (killed, or out of memory) on each of "
                                             f"{tries[job.line]} tries"}

    def _restart(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None

    def close(self, interrupted: bool = False) -> None:
        """Stop the pool; when interrupted, stop the running jobs too (their partial files go)."""
        executor, self._executor = self._executor, None
        try:
            if executor is None:
                return
            if not interrupted:
                executor.shutdown(wait=True)
                return
            processes = list(getattr(executor, "_processes", {}).values())
            executor.shutdown(wait=False, cancel_futures=True)
            for p in processes:  # SIGTERM: the job unwinds through its writer, which removes its file
                if p.is_alive():
                    p.terminate()
            for p in processes:
                p.join(5)
                if p.is_alive():
                    p.kill()
                    p.join(1)
        finally:
            self._env.__exit__(None, None, None)
