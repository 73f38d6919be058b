"""`facetalk bench --live`: latency, start-up, concurrency and memory of live sessions.

Audio is fed in 20 ms chunks on a real-time clock, as a microphone would; a frame's latency is the
wall time from the moment the audio up to the end of that frame has arrived (by that clock) to the
moment the frame is out as a JPEG (what the server sends), so it includes the one frame of
lookahead, the chunking, any queueing behind other sessions and all the work.
"""

from __future__ import annotations

import os
import threading
import time
from importlib import resources
from pathlib import Path

import cv2
import numpy as np

from facetalk.api import Avatar
from facetalk.media.audio import SAMPLE_RATE, read_audio
from facetalk.media.image import read_image
from facetalk.motion.controls import Controls
from facetalk.stream.session import LiveFrame, Session

CHUNK_S = 0.02
FPS = 25.0
LATENCY_TARGET_MS = 100.0
JPEG_QUALITY = 80


def _asset(name: str) -> Path:
    return Path(str(resources.files("facetalk.assets") / name))


def _speech(seconds: float) -> np.ndarray:
    voice = read_audio(_asset("voice.wav"))
    return np.tile(voice, int(np.ceil(seconds * SAMPLE_RATE / len(voice))))[: int(seconds * SAMPLE_RATE)]


def _jpeg(frame: LiveFrame) -> bytes:
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(frame.image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    return buf.tobytes()


def realtime_latencies(session: Session, audio: np.ndarray, start: float) -> list[float]:
    """Feed `audio` on a real-time clock from wall time `start`; the latency of every frame, in ms."""
    step = int(CHUNK_S * SAMPLE_RATE)
    out = []

    def arrived(frame: LiveFrame) -> float:  # when the audio to the end of this frame was in
        end = int(round((frame.index + 1) * SAMPLE_RATE / session.fps))
        return start + np.ceil(end / step) * step / SAMPLE_RATE

    for k, i in enumerate(range(0, len(audio), step)):
        wait = start + (k + 1) * CHUNK_S - time.perf_counter()  # a chunk is there once it has been recorded
        if wait > 0:
            time.sleep(wait)
        for frame in session.push(audio[i:i + step]):
            _jpeg(frame)
            out.append(1000 * (time.perf_counter() - min(arrived(frame), time.perf_counter())))
    for frame in session.close():
        _jpeg(frame)
    return out


def concurrent_latencies(avatar: Avatar, n: int, seconds: float) -> list[float]:
    """n sessions at once, each on its own thread (as the server runs them), all frames' latencies."""
    audio = _speech(seconds)
    results: list[list[float]] = [[] for _ in range(n)]
    sessions = [avatar.stream(Controls(seed=k)) for k in range(n)]
    start = time.perf_counter() + 0.1

    def run(k: int) -> None:
        results[k] = realtime_latencies(sessions[k], audio, start)

    threads = [threading.Thread(target=run, args=(k,)) for k in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return [x for r in results for x in r]


def first_frame_ms(photo: np.ndarray) -> float:
    """Avatar creation (photo analysed) + session start + the first frame, with its audio waiting."""
    audio = _speech(0.2)
    t = time.perf_counter()
    session = Avatar.from_image(photo).stream()
    step = int(CHUNK_S * SAMPLE_RATE)
    for i in range(0, len(audio), step):
        if session.push(audio[i:i + step]):
            return 1000 * (time.perf_counter() - t)
    raise RuntimeError("no frame from 0.2 s of audio")


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def memory_over(avatar: Avatar, minutes: float) -> dict[str, float]:
    """RSS while one session streams `minutes` of audio as fast as it can."""
    session = avatar.stream()
    voice = _speech(60.0)
    step = int(CHUNK_S * SAMPLE_RATE)
    rss = []
    for _ in range(int(np.ceil(minutes))):
        for i in range(0, len(voice), step):
            for frame in session.push(voice[i:i + step]):
                _jpeg(frame)
        rss.append(_rss_mb())
    session.close()
    return {"live_rss_mb_after_1min": round(rss[0], 1), "live_rss_mb_at_end": round(rss[-1], 1),
            "live_rss_growth_mb": round(rss[-1] - rss[0], 1), "live_memory_minutes": len(rss)}


def measure_live(image: str | None = None, seconds: float = 12.0, max_sessions: int = 10,
                 memory_minutes: float = 10.0) -> dict[str, float]:
    cv2.setNumThreads(1)  # sessions run in parallel threads; OpenCV's own pool would fight them
    photo = read_image(Path(image) if image else _asset("portrait.png"))
    t = time.perf_counter()
    avatar = Avatar.from_image(photo)
    cold = 1000 * (time.perf_counter() - t)
    with avatar.stream() as warm:  # imports, JIT, first-use costs
        warm.push(_speech(0.5))
    result: dict[str, float] = {"live_first_frame_ms": round(float(np.median([first_frame_ms(photo) for _ in range(3)])), 1),
                                "live_avatar_first_ms": round(cold, 1)}
    one = np.array(concurrent_latencies(avatar, 1, seconds))
    result.update(live_latency_p50_ms=round(float(np.percentile(one, 50)), 1),
                  live_latency_p95_ms=round(float(np.percentile(one, 95)), 1),
                  live_latency_max_ms=round(float(one.max()), 1))
    best = 0
    for n in range(1, max_sessions + 1):
        p95 = float(np.percentile(concurrent_latencies(avatar, n, seconds), 95))
        result[f"live_p95_ms_{n}_sessions"] = round(p95, 1)
        if p95 > LATENCY_TARGET_MS:
            break
        best = n
    result["live_sessions_max"] = best  # == live_sessions_tried: it kept up with all it was given
    result["live_sessions_tried"] = n
    if memory_minutes > 0:
        result.update(memory_over(avatar, memory_minutes))
    result.update(live_fps=FPS, live_chunk_ms=1000 * CHUNK_S, live_seconds=seconds, size=avatar.rig.size)
    return result

