"""`facetalk bench --batch`: batch throughput on this machine, measured in one run.

- single_job_fps: output frames per wall second of one job (photo analysed, 10 s of audio -> MP4)
  in a one-thread worker process that is already warm (imports and JIT done), as `facetalk
  generate` would be in a warm process limited to one thread. Its photo is the demo portrait
  mirrored, so the job analyses it (the batch runs reuse their rig, as a batch of one photo does).
- local_1/local_N: throughput (output fps, jobs per minute) of the local pool with 1 and N (= the
  cores) workers on jobs of `seconds` of audio, JOBS_PER_WORKER jobs per worker, pools warmed first.
- ray_N: the same jobs as Ray tasks on a local Ray instance with N CPUs, warmed first.
The ratios are the targets': local_N / local_1, local_N / (N x single_job_fps), ray_N / local_N.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Callable
from importlib import resources
from pathlib import Path

import numpy as np

from facetalk.batch.local import LocalPool, default_workers
from facetalk.batch.runner import run

JOBS_PER_WORKER = 3
WARM_SECONDS = 1.0


def _media(tmp: Path, seconds: float) -> tuple[Path, Path, Path, Path]:
    from facetalk.media.audio import SAMPLE_RATE, read_audio
    from facetalk.media.image import read_image, write_image

    assets = resources.files("facetalk.assets")
    photo = Path(str(assets / "portrait.png"))
    mirrored = tmp / "mirrored.png"
    write_image(mirrored, np.ascontiguousarray(read_image(photo)[:, ::-1]))
    voice = read_audio(Path(str(assets / "voice.wav")))
    clips = []
    for name, length in (("job.wav", seconds), ("warm.wav", WARM_SECONDS)):
        n = int(length * SAMPLE_RATE)
        samples = np.tile(voice, int(np.ceil(n / len(voice))))[:n]
        path = tmp / name
        _write_wav(path, samples, SAMPLE_RATE)
        clips.append(path)
    return photo, mirrored, clips[0], clips[1]


def _write_wav(path: Path, samples: np.ndarray, rate: int) -> None:
    import wave

    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())


def _throughput(pool: object, photo: Path, clip: Path, warm: Path, n_jobs: int, out: Path) -> dict[str, float]:
    """Warm every worker (a short job each: imports, JIT, the photo's rig), then time n_jobs jobs."""
    workers = getattr(pool, "workers")
    warmed: set[object] = set()
    for attempt in range(4):  # the pool hands jobs to whichever worker is free: repeat until all had one
        rows = [{"image": str(photo), "audio": str(warm), "output": f"warm{attempt}-{i}"} for i in range(workers)]
        warmed |= {r.get("worker") for r in run(rows, out / "warm", backend=pool).results}
        if len(warmed) >= workers:
            break
    rows = [{"image": str(photo), "audio": str(clip), "seed": i, "output": f"job{i}"} for i in range(n_jobs)]
    report = run(rows, out / "jobs", backend=pool)
    if not report.ok:
        failed = next(r for r in report.results if r["status"] != "ok")
        raise RuntimeError(f"a bench job failed: {failed.get('error')}")
    return {"fps": round(report.frames / report.seconds, 1), "jobs_per_min": round(60 * n_jobs / report.seconds, 2),
            "jobs": n_jobs, "seconds": round(report.seconds, 2)}


def measure_batch(seconds: float = 10.0, ray: bool = True,
                  log: Callable[[str], None] = lambda line: None) -> dict[str, object]:
    started = time.perf_counter()
    cores = default_workers()
    result: dict[str, object] = {"cores": cores, "audio_seconds_per_job": seconds,
                                 "load_average_before": round(os.getloadavg()[0], 2)}
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        photo, mirrored, clip, warm = _media(tmp, seconds)
        pool = LocalPool(1)
        try:
            local_1 = _throughput(pool, photo, clip, warm, JOBS_PER_WORKER, tmp / "local1")
            single = run([{"image": str(mirrored), "audio": str(clip), "output": "single"}], tmp / "single",
                         backend=pool).results[0]
        finally:
            pool.close()
        result["single_job_fps"] = round(single["frames"] / single["seconds"], 1)
        result["local_1"] = local_1
        log(f"one worker: {local_1['fps']} fps; one job alone: {result['single_job_fps']} fps")
        pool = LocalPool(cores)
        try:
            local_n = _throughput(pool, photo, clip, warm, JOBS_PER_WORKER * cores, tmp / "localn")
        finally:
            pool.close()
        result[f"local_{cores}"] = local_n
        log(f"{cores} workers: {local_n['fps']} fps")
        ray_n = None
        if ray:
            try:
                from facetalk.batch.ray_backend import RayPool

                ray_pool = RayPool("local", cores)
            except Exception as exc:  # noqa: BLE001 - Ray missing or unable to start: say so, measure the rest
                result["ray"] = f"not measured: {exc}"
            else:
                try:
                    ray_n = _throughput(ray_pool, photo, clip, warm, JOBS_PER_WORKER * cores, tmp / "ray")
                finally:
                    ray_pool.close()
                result[f"ray_{cores}"] = ray_n
                log(f"Ray, {cores} CPUs: {ray_n['fps']} fps")
    result["speedup_workers"] = round(local_n["fps"] / local_1["fps"], 3)  # target >= 1.7 (2 cores)
    result["batch_vs_cores_x_single"] = round(local_n["fps"] / (cores * result["single_job_fps"]), 3)  # >= 0.9
    if ray_n is not None:
        result["ray_vs_local"] = round(ray_n["fps"] / local_n["fps"], 3)  # target >= 0.9
    per_core = local_n["fps"] / cores
    result["video_hours_per_hour_per_core"] = round(per_core / 25.0, 2)  # 25 fps output
    result["load_average_after"] = round(os.getloadavg()[0], 2)
    result["seconds"] = round(time.perf_counter() - started, 1)
    return result


def run_batch_bench(seconds: float = 10.0, as_json: bool = False) -> dict[str, object]:
    import sys

    result = measure_batch(seconds, log=lambda line: print(f"facetalk bench: {line}", file=sys.stderr))
    if as_json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:<30}  {value}")
    return result
