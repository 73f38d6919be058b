"""`facetalk batch` / `facetalk.batch.run`: validate every job, skip the finished ones, render the
rest on a local pool or Ray, and record one line per job in OUT/results.jsonl."""

from __future__ import annotations

import errno
import json
import os
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from facetalk.batch.jobs import BadJobs, BadRow, Job, parse_rows, read_rows
from facetalk.batch.partial import finished_output, remove_partials
from facetalk.errors import FacetalkError

RESULTS = "results.jsonl"
LOCK = ".facetalk-batch.lock"


@dataclass
class BatchReport:
    """What a batch did; `results` holds one dict per job, in the jobs file's order."""

    out_dir: Path
    results: list[dict[str, object]]
    seconds: float  # wall time of the rendering (validation and skip checks excluded)
    backend: str
    workers: int
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Every job succeeded (rendered now or found finished)."""
        return all(r["status"] in ("ok", "skipped") for r in self.results)

    @property
    def failed(self) -> int:
        return sum(r["status"] in ("failed", "invalid") for r in self.results)

    @property
    def frames(self) -> int:
        return sum(int(r.get("frames") or 0) for r in self.results if r["status"] == "ok")

    @property
    def results_path(self) -> Path:
        return self.out_dir / RESULTS

    def summary(self) -> str:
        n = {s: sum(r["status"] == s for r in self.results) for s in ("ok", "skipped", "failed", "invalid")}
        rendered = n["ok"]
        rate = (f": {self.frames} frames, {self.frames / self.seconds:.1f} fps, "
                f"{60 * rendered / self.seconds:.1f} jobs/min" if rendered and self.seconds > 0 else "")
        parts = [f"{rendered} rendered", f"{n['skipped']} already done", f"{n['failed']} failed"]
        if n["invalid"]:
            parts.append(f"{n['invalid']} bad rows skipped")
        return (f"batch: {', '.join(parts)} of {len(self.results)} jobs in {self.seconds:.1f} s with "
                f"{self.workers} {self.backend} worker{'s' if self.workers != 1 else ''}{rate}; "
                f"results in {self.results_path}")


def load_jobs(jobs: str | os.PathLike[str] | Iterable[Job | Mapping[str, object]], out_dir: Path,
              skip_bad: bool = False) -> tuple[list[Job], list[BadRow], str]:
    """Jobs from a jobs file or from rows (dicts as a file's rows; Job objects as they are)."""
    if isinstance(jobs, (str, os.PathLike)):
        path = Path(jobs)
        rows = read_rows(path)
        parsed, bad = parse_rows(rows, out_dir, base=path.absolute().parent)
        source = path.name
    else:
        given = list(jobs)
        ready = [j for j in given if isinstance(j, Job)]
        rows = [(i, r) for i, r in enumerate(given, 1) if not isinstance(r, Job)]
        if any(not isinstance(r, Mapping) for _, r in rows):
            raise TypeError("jobs must be a jobs file's path, or dicts (image, audio, options) or Job objects")
        parsed, bad = parse_rows(rows, out_dir)  # type: ignore[arg-type]
        parsed = sorted(parsed + ready, key=lambda j: j.line)
        source = "jobs"
    if not parsed and not bad:
        raise FacetalkError("no jobs given")
    if bad and not skip_bad:
        raise BadJobs(source, bad)
    if len({j.line for j in parsed} | {b.line for b in bad}) < len(parsed) + len(bad):
        raise FacetalkError("two jobs have the same line number; number Job objects uniquely")
    outputs: dict[str, int] = {}
    for job in parsed:
        if job.output in outputs:
            raise FacetalkError(f"{source} line {job.line}: its output {job.output} is also written by line "
                                f"{outputs[job.output]}")
        outputs[job.output] = job.line
    return parsed, bad, source


class _Lock:
    """One batch at a time per output folder (so leftovers can be removed safely)."""

    def __init__(self, out_dir: Path) -> None:
        self.path = out_dir / LOCK
        self.fd: int | None = None

    def __enter__(self) -> "_Lock":
        try:
            import fcntl
        except ImportError:  # not POSIX: no lock
            return self
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(self.fd)
            self.fd = None
            if exc.errno not in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EACCES):
                return self  # a file system without locks (some network mounts): go on unlocked
            raise FacetalkError(f"another facetalk batch is writing to '{self.path.parent}'; wait for it to "
                                "end, or choose another --out folder") from None
        return self

    def __exit__(self, *exc: object) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def _record(job: Job, result: Mapping[str, object]) -> dict[str, object]:
    out = {"line": job.line, "image": job.image, "audio": job.audio, "output": job.output}
    out.update(result)
    return out


def _write_results(path: Path, records: list[dict[str, object]]) -> None:
    tmp = path.with_name(f".{path.name}.partial")
    with open(tmp, "w", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    os.replace(tmp, path)


def run(jobs: str | os.PathLike[str] | Iterable[Job | Mapping[str, object]], out_dir: str | os.PathLike[str], *,
        workers: int | None = None, ray_address: str | None = None, retries: int = 2, skip_bad: bool = False,
        progress: bool = False, backend: object | None = None,
        log: Callable[[str], None] | None = None) -> BatchReport:
    """Render every job into `out_dir` and return the report (see BatchReport).

    jobs: a CSV or JSON Lines jobs file, or rows as dicts ({"image": ..., "audio": ..., "seed": 3})
        or Job objects. Every row is validated first; bad rows raise BadJobs (a FacetalkError
        listing them) before anything is rendered, unless `skip_bad`, which records them as
        "invalid" and renders the rest.
    workers: processes (local) or tasks in flight (Ray); default: the cores (local) or the
        cluster's CPUs (Ray).
    ray_address: None for the local process pool; "local" to run on Ray locally (a new instance,
        or the one this process has already started); else an existing cluster's address ("auto",
        "HOST:6379", "ray://HOST:10001"). `out_dir` and the inputs must then be on shared storage.
    retries: how many times a job whose worker died is tried again.
    A job whose output exists and is a finished facetalk video is skipped ("skipped"), so running
    the same batch again completes an interrupted one.
    """
    if retries < 0:
        raise FacetalkError(f"--retries must be 0 or more, got {retries}")
    if workers is not None and workers < 1:
        raise FacetalkError(f"--workers must be at least 1, got {workers}")
    out = Path(out_dir).absolute()
    if out.exists() and not out.is_dir():
        raise FacetalkError(f"--out '{out_dir}' is a file, not a folder; choose a folder for the videos")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FacetalkError(f"cannot create the output folder '{out_dir}': {exc.strerror or exc}") from None
    parsed, bad, _ = load_jobs(jobs, out, skip_bad)
    say = log or (lambda line: None)
    with _Lock(out):
        records: dict[int, dict[str, object]] = {}
        for b in bad:
            cells = {k: str(v) for k, v in b.row.items() if not str(k).startswith("__")}
            records[b.line] = {"line": b.line, **cells, "status": "invalid", "error": b.message}
        todo: list[Job] = []
        remove_partials(j.output for j in parsed)  # leftovers of a killed run (the lock: no batch is writing)
        for job in parsed:
            done = finished_output(job.output)
            if done is not None:
                records[job.line] = _record(job, {"status": "skipped", "reason": "output exists and is a "
                                                  "finished facetalk video", **done})
                continue
            try:
                Path(job.output).parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                records[job.line] = _record(job, {"status": "failed", "error": f"cannot create the folder of "
                                                  f"'{job.output}': {exc.strerror or exc}"})
                continue
            todo.append(job)
        if len(todo) < len(parsed):
            say(f"{len(parsed) - len(todo)} of {len(parsed)} jobs already done (their outputs exist); "
                f"{len(todo)} to render")
        # a photo's jobs one after another: a worker that has its rig gets its next job
        todo.sort(key=lambda j: (j.image, j.size, j.face or 0, j.full_frame, j.line))
        pool = backend
        if pool is None and todo:
            if ray_address is None:
                from facetalk.batch.local import LocalPool

                pool = LocalPool(workers, retries)
            else:
                from facetalk.batch.ray_backend import RayPool

                pool = RayPool(ray_address, workers, retries)
        n_workers = getattr(pool, "workers", workers or 0)
        name = getattr(pool, "name", "local" if ray_address is None else "ray")
        results_path = out / RESULTS
        started = time.perf_counter()
        bar = _Bar(len(todo), progress, len(parsed) - len(todo))
        interrupted = True
        try:
            with open(results_path, "w", encoding="utf-8") as stream:  # as the jobs finish, for tail -f
                for r in sorted(records.values(), key=lambda r: int(r["line"])):
                    stream.write(json.dumps(r, ensure_ascii=False) + "\n")
                stream.flush()
                if todo:
                    for job, result in pool.results(todo):  # type: ignore[union-attr]
                        if result.get("status") != "ok":
                            remove_partials([job.output])
                        records[job.line] = _record(job, result)
                        stream.write(json.dumps(records[job.line], ensure_ascii=False) + "\n")
                        stream.flush()
                        bar.update(result)
            interrupted = False
        finally:
            bar.close()
            if pool is not None and backend is None:
                pool.close(interrupted=interrupted)  # type: ignore[union-attr]
            # what killed workers left (a job retried by Ray after its worker was lost succeeds, but
            # the lost attempt's file stays): one listing per output folder
            remove_partials(j.output for j in todo)
            ordered = [records[k] for k in sorted(records)]
            try:  # sorted; after an interruption, the jobs that finished
                _write_results(results_path, ordered)
            except OSError:
                if not interrupted:
                    raise
        seconds = time.perf_counter() - started
    return BatchReport(out, ordered, seconds, name, n_workers)


class _Bar:
    """One bar for the whole batch: jobs done, frames, rate and time left (tqdm, on stderr)."""

    def __init__(self, total: int, enabled: bool, skipped: int) -> None:
        self.bar = None
        self.frames = 0
        self.failed = 0
        self.started = time.perf_counter()
        if enabled and total:
            from tqdm import tqdm

            desc = "batch" + (f" ({skipped} done earlier)" if skipped else "")
            self.bar = tqdm(total=total, unit="job", desc=desc, file=sys.stderr, dynamic_ncols=True)

    def update(self, result: Mapping[str, object]) -> None:
        self.frames += int(result.get("frames") or 0)
        self.failed += result.get("status") != "ok"
        if self.bar is not None:
            fps = self.frames / max(1e-9, time.perf_counter() - self.started)
            failed = f", {self.failed} failed" if self.failed else ""
            self.bar.set_postfix_str(f"{self.frames} frames, {fps:.0f} fps{failed}", refresh=False)
            self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
