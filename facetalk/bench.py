"""`facetalk bench`: speed of each stage and of the whole job, measured on this machine.

render_fps: 512² frames rendered per second on one thread (rendering only, motion precomputed).
e2e_fps: output frames per wall second of `generate` (photo + audio -> MP4, everything included).
rig_ms: photo -> FaceRig, median of warm runs (rig_first_ms: the first in a process, which also
imports MediaPipe: ~0.33 s, most of it the matplotlib import its package __init__ makes).
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
import wave
from importlib import resources
from pathlib import Path

import cv2
import numpy as np

from facetalk.audio.features import audio_features
from facetalk.face.rig import build_rig
from facetalk.media.audio import SAMPLE_RATE, read_audio
from facetalk.media.image import read_image
from facetalk.motion.controls import Controls
from facetalk.motion.generate import generate
from facetalk.pipeline import render_video
from facetalk.render.renderer import Renderer

RENDER_FRAMES = 250


def _demo_asset(name: str) -> Path:
    return Path(str(resources.files("facetalk.assets") / name))


def _write_wav(path: Path, samples: np.ndarray, rate: int) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())


def _timed(fn, *args, **kwargs) -> tuple[float, object]:  # noqa: ANN001, ANN002, ANN003
    t = time.perf_counter()
    out = fn(*args, **kwargs)
    return time.perf_counter() - t, out


def measure(image: str | None = None, seconds: float = 10.0) -> dict[str, float]:
    photo_path = Path(image) if image else _demo_asset("portrait.png")
    photo = read_image(photo_path)
    cold, rig = _timed(build_rig, photo)
    warm = [_timed(build_rig, photo)[0] for _ in range(5)]

    voice = read_audio(_demo_asset("voice.wav"))
    reps = int(np.ceil(seconds * SAMPLE_RATE / len(voice)))
    audio = np.tile(voice, reps)[: int(seconds * SAMPLE_RATE)]
    t_feat, features = _timed(audio_features, [audio], SAMPLE_RATE, 25.0)
    t_motion, track = _timed(generate, features, Controls(seed=0))

    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        renderer = Renderer(rig)
        for i in range(5):  # warm-up: JIT and caches
            renderer.render(track.frame(i))
        n = min(RENDER_FRAMES, len(track))
        t_render, _ = _timed(lambda: [renderer.render(track.frame(i)) for i in range(n)])
    finally:
        cv2.setNumThreads(threads)

    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "voice.wav"
        _write_wav(wav, audio, SAMPLE_RATE)
        out = Path(tmp) / "out.mp4"
        t_e2e, summary = _timed(render_video, photo_path, wav, out)
    return {
        "render_fps": round(n / t_render, 1),
        "render_ms": round(1000 * t_render / n, 2),
        "e2e_fps": round(summary.frames / t_e2e, 1),
        "e2e_frames": summary.frames,
        "rig_ms": round(1000 * statistics.median(warm), 1),
        "rig_first_ms": round(1000 * cold, 1),
        "features_ms_per_s": round(1000 * t_feat / seconds, 2),
        "motion_ms_per_s": round(1000 * t_motion / seconds, 2),
        "size": rig.size,
        "audio_seconds": seconds,
    }


def run_bench(image: str | None = None, seconds: float = 10.0, as_json: bool = False, live: bool = False,
              live_minutes: float = 10.0) -> dict[str, float]:
    if live:
        from facetalk.stream.bench import measure_live

        result = measure_live(image, memory_minutes=live_minutes)
    else:
        result = measure(image, seconds)
    if as_json:
        print(json.dumps(result))
    else:
        width = max(len(k) for k in result)
        for key, value in result.items():
            print(f"{key:<{width}}  {value}")
    return result
