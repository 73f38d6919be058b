"""What runs inside a batch worker (a pool process or a Ray worker): one job at a time, through
the same path as `facetalk generate` (pipeline.rig_from_photo + pipeline.write_video).

Each worker process keeps the rigs of the photos it has analysed, keyed by the photo's content
(and size, face, full frame), so a photo used by many jobs is analysed once per worker. The worker
runs on one thread: the pool sets OMP/OpenBLAS/MKL/Numba variables before the process starts
(THREAD_ENV), and `limit_threads` sets OpenCV's and the H.264 encoder's thread counts.

A job never raises: it returns a plain dict (see `run_job`), with the one-line reason when it failed.
"""

from __future__ import annotations

import hashlib
import os
import signal
import socket
import time
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from facetalk.batch.jobs import Job

THREAD_ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
              "NUMBA_NUM_THREADS": "1", "VECLIB_MAXIMUM_THREADS": "1"}
RIG_CACHE = 8  # photos kept per worker (a 512² rig with its plates is a few MB)
# Test hook: a job whose worker process finds this variable set kills that process (SIGKILL) in the
# middle of writing its video, once per flag file (created atomically): the "lost worker" case.
CRASH_ONCE = "FACETALK_BATCH_CRASH_ONCE"

_rigs: OrderedDict[tuple, object] = OrderedDict()  # key -> (rig, photo), or the error it gave
_limited = False


def limit_threads() -> None:
    """One thread for OpenCV and for x264 in this process (idempotent)."""
    global _limited
    if _limited:
        return
    _limited = True
    for key, value in THREAD_ENV.items():  # for anything not imported yet
        os.environ.setdefault(key, value)
    import cv2

    cv2.setNumThreads(1)
    from facetalk.media import video

    add = getattr(video.VideoWriter, "_add_video_stream", None)
    if add is not None and not getattr(add, "_one_thread", False):
        # The writer lets x264 pick a thread per core; workers already fill the cores one each.
        def one_thread(self, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
            stream = add(self, *args, **kwargs)
            stream.codec_context.thread_count = 1
            return stream

        one_thread._one_thread = True  # type: ignore[attr-defined]
        video.VideoWriter._add_video_stream = one_thread  # type: ignore[method-assign]


def init_pool_worker() -> None:
    """Initializer of a local pool process: one thread, and SIGTERM or SIGHUP clean up like Ctrl-C."""
    limit_threads()

    def terminated(signum: int, frame: object) -> None:
        for s in (signal.SIGTERM, signal.SIGHUP):  # a second signal ends the process at once
            signal.signal(s, signal.SIG_DFL)
        raise SystemExit(128 + signum)  # unwinds through the writer, which removes its partial file

    for s in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, terminated)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _photo_key(job: Job) -> tuple:
    digest = hashlib.sha256()
    with open(job.image, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest(), job.size, job.face, job.full_frame


def _rig(job: Job) -> tuple[Any, Any, bool]:
    """(rig, photo, cached?) for the job's photo, analysed at most once per worker (a photo that
    cannot be used, e.g. without a face, fails its next jobs with the same message at once)."""
    from facetalk.errors import FacetalkError
    from facetalk.pipeline import rig_from_photo

    try:
        key = _photo_key(job)
    except OSError:
        key = None  # unreadable: rig_from_photo says why in the usual words
    if key is not None and key in _rigs:
        _rigs.move_to_end(key)
        cached = _rigs[key]
        if isinstance(cached, FacetalkError):  # e.g. no face: the same answer for its next jobs
            raise FacetalkError(str(cached), cached.exit_code)
        rig, photo = cached
        return rig, photo, True
    try:
        rig, photo = rig_from_photo(job.image, size=job.size, face=job.face, full_frame=job.full_frame)
    except FacetalkError as exc:
        if key is not None:
            _remember(key, exc)
        raise
    if key is not None:
        _remember(key, (rig, photo))
    return rig, photo, False


def _remember(key: tuple, value: object) -> None:
    _rigs[key] = value
    while len(_rigs) > RIG_CACHE:
        _rigs.popitem(last=False)


def _crash_hook():  # noqa: ANN202
    flag = os.environ.get(CRASH_ONCE)
    if not flag:
        return None

    def progress(done: int, total: int) -> None:
        if done == min(5, total):
            try:
                os.close(os.open(flag, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            except FileExistsError:
                return
            os.kill(os.getpid(), signal.SIGKILL)

    return progress


def run_job(job: Job) -> dict[str, object]:
    """Render one job; a dict with status "ok" (frames, seconds, watermark id, ...) or "failed" (error)."""
    from facetalk.errors import FacetalkError
    from facetalk.media._files import one_line
    from facetalk.pipeline import write_video

    limit_threads()
    started = time.perf_counter()
    cpu = time.process_time()
    result: dict[str, object] = {"worker": worker_name()}
    try:
        rig, photo, cached = _rig(job)
        result["rig"] = "cached" if cached else "built"
        summary = write_video(rig, photo, job.audio, job.output, fps=job.fps, controls=job.controls,
                              full_frame=job.full_frame, progress=_crash_hook(), started=started,
                              watermark=job.watermark, label=job.label, text=job.text)
    except FacetalkError as exc:
        return {**result, "status": "failed", "error": str(exc), "seconds": _since(started)}
    except MemoryError:
        return {**result, "status": "failed", "error": "out of memory", "seconds": _since(started)}
    except Exception as exc:  # a bug of ours: the batch goes on, the line says what it was
        if os.environ.get("FACETALK_DEBUG"):
            raise
        text = str(exc).splitlines()[0] if str(exc) else ""
        return {**result, "status": "failed", "seconds": _since(started),
                "error": f"internal error: {type(exc).__name__}: {one_line(text)} (please report it)"}
    return {**result, "status": "ok", "frames": summary.frames, "video_seconds": round(summary.video_seconds, 3),
            "seconds": round(summary.seconds, 3), "cpu_seconds": round(time.process_time() - cpu, 3),
            "width": summary.width, "height": summary.height, "watermark_id": summary.watermark_id,
            "notes": list(summary.notes)}


def _since(t: float) -> float:
    return round(time.perf_counter() - t, 3)
