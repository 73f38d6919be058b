"""`facetalk bench --live`: latency, start-up, concurrency and memory of live sessions.

Audio is fed in 20 ms chunks on a real-time clock, as a microphone would; a frame's latency is the
wall time from the moment the audio up to the end of that frame has arrived (by that clock) to the
moment the frame is out as a JPEG (what the server sends), so it includes the one frame of
lookahead, the chunking, any queueing behind other sessions and all the work.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from facetalk.api import Avatar
from facetalk.media.audio import SAMPLE_RATE, read_audio
from facetalk.media.image import read_image
from facetalk.motion.controls import Controls
from facetalk.stream.protocol import FRAME_HEADER
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


def idle_memory_over(avatar: Avatar, minutes: float) -> dict[str, float]:
    """RSS while one session listens to `minutes` of silence, as an avatar waiting for its user
    does between turns (listening motion, blinks, the phone recogniser reading silence). Fed as
    fast as it goes, a second at a time; only the newest frame of each second is rendered, since
    rendering keeps nothing from frame to frame and would only make the hour take longer."""
    session = avatar.stream()
    second = np.zeros(SAMPLE_RATE, np.float32)
    rss = []
    t = time.perf_counter()
    for _ in range(int(np.ceil(minutes))):
        for _ in range(60):
            session.push(second, keep=lambda index, newest: newest)
        rss.append(_rss_mb())
    session.close()
    return {"idle_rss_mb_after_1min": round(rss[0], 1), "idle_rss_mb_at_end": round(rss[-1], 1),
            "idle_rss_growth_mb": round(rss[-1] - rss[0], 1), "idle_minutes": len(rss),
            "idle_s_per_minute": round((time.perf_counter() - t) / len(rss), 2)}


def measure_live(image: str | None = None, seconds: float = 12.0, max_sessions: int = 10,
                 memory_minutes: float = 10.0, idle_minutes: float = 60.0) -> dict[str, float]:
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
    if idle_minutes > 0:
        result.update(idle_memory_over(avatar, idle_minutes))
    result.update(live_fps=FPS, live_chunk_ms=1000 * CHUNK_S, live_seconds=seconds, size=avatar.rig.size)
    return result



# --- `facetalk bench --live --soak`: real-time WebSocket clients against a real server -------------
#
# The server runs as `facetalk serve` in its own process (as in production: the clients' work does
# not share its interpreter), on a free port of 127.0.0.1, and measures its own capacity at
# start-up. The clients, asyncio tasks in this process, stream the built-in voice in 20 ms
# messages on a real-time clock, as the page does, and measure what the page shows: a frame's
# latency is its arrival minus the moment the message holding the end of its sound was sent.

SOAK_CHUNK_S = 0.02
SOAK_WINDOW_S = 30.0  # p95 per window of this length, to see whether latency grows over the run
SOAK_LATENCY_TARGET_MS = 150.0


@dataclass
class ClientRun:
    """What one soak client saw."""

    refused: str | None = None
    frames: int = 0
    clock_frames: int = 0  # frames of sound sent
    latencies: list[tuple[float, float]] = field(default_factory=list)  # (s since start, ms)
    notices: list[dict[str, Any]] = field(default_factory=list)  # the server's {"degraded"} messages
    errors: list[str] = field(default_factory=list)
    end: dict[str, Any] | None = None

    def summary(self, seconds: float, window_s: float = SOAK_WINDOW_S) -> dict[str, Any]:
        if self.refused is not None:
            return {"refused": self.refused}
        ms = np.array([x for _, x in self.latencies]) if self.latencies else np.zeros(1)
        windows = [np.array([x for t, x in self.latencies if k * window_s <= t < (k + 1) * window_s])
                   for k in range(int(np.ceil(seconds / window_s)))]
        return {"frames": self.frames, "clock_frames": self.clock_frames,
                "fps": round(self.frames / max(seconds, 1e-9), 1),
                "latency_p50_ms": round(float(np.percentile(ms, 50)), 1),
                "latency_p95_ms": round(float(np.percentile(ms, 95)), 1),
                "latency_max_ms": round(float(ms.max()), 1),
                "p95_ms_per_window": [round(float(np.percentile(w, 95)), 1) if len(w) else None for w in windows],
                "degraded_notices": len(self.notices),
                "last_notice": self.notices[-1]["degraded"] if self.notices else None,
                "errors": self.errors, "dropped": None if self.end is None else self.end.get("dropped")}


async def realtime_client(url: str, pcm: bytes, fps_hint: float = FPS) -> ClientRun:
    """Stream int16 `pcm` to a live WebSocket in real time, then end it; what came back."""
    from websockets.asyncio.client import connect

    run = ClientRun()
    step = int(SOAK_CHUNK_S * SAMPLE_RATE) * 2
    async with connect(url, max_size=None, open_timeout=120, ping_interval=None) as ws:
        first = json.loads(await ws.recv())
        if "error" in first:
            run.refused = first["error"]
            return run
        fps, rate = first.get("fps", fps_hint), first.get("sample_rate", SAMPLE_RATE)
        sends: list[tuple[int, float]] = []  # (samples sent in all, when)
        started = time.perf_counter()

        async def send() -> None:
            sent = 0
            for k, i in enumerate(range(0, len(pcm), step)):
                wait = started + k * SOAK_CHUNK_S - time.perf_counter()
                if wait > 0:
                    await asyncio.sleep(wait)
                await ws.send(pcm[i:i + step])
                sent += len(pcm[i:i + step]) // 2
                sends.append((sent, time.perf_counter()))
            await ws.send(json.dumps({"end": True}))

        sender = asyncio.create_task(send())
        cursor = 0
        try:
            async for message in ws:
                now = time.perf_counter()
                if isinstance(message, bytes):
                    _, t = FRAME_HEADER.unpack_from(message)
                    run.frames += 1
                    due = round((t + 1 / fps) * rate)  # the frame shows the sound of [t, t + 1/fps)
                    while cursor < len(sends) and sends[cursor][0] < due:
                        cursor += 1
                    if cursor < len(sends):
                        run.latencies.append((now - started, 1000 * (now - sends[cursor][1])))
                    continue
                text = json.loads(message)
                if "degraded" in text:
                    run.notices.append(text)
                elif "error" in text:
                    run.errors.append(text["error"])
                elif text.get("end"):
                    run.end = text
                    break
        finally:
            sender.cancel()
            await asyncio.wait({sender})
        run.clock_frames = int(len(pcm) // 2 * fps / rate)
    return run


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _proc_rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _status(base: str) -> dict[str, Any]:
    """`GET /status` of the server being soaked: the one this bench started on 127.0.0.1, or the
    one `--url` names (nothing is downloaded)."""
    import urllib.request

    with urllib.request.urlopen(f"{base}/status", timeout=10) as r:
        return json.loads(r.read())


def start_server(max_sessions: int | None = None, port: int | None = None,
                 timeout_s: float = 180.0) -> tuple[subprocess.Popen[bytes], str]:
    """`facetalk serve` in a child process, warmed and measured; (process, base URL)."""
    port = port or _free_port()
    args = [sys.executable, "-m", "facetalk.cli", "serve", "--port", str(port)]
    if max_sessions is not None:
        args += ["--max-sessions", str(max_sessions)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(Path(__file__).resolve().parents[2]),
                                                                       os.environ.get("PYTHONPATH")]))}
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout_s
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"facetalk serve exited: {proc.stderr.read().decode(errors='replace')[-2000:]}")
        try:
            if _status(base).get("max_live_sessions") is not None:
                return proc, base
        except OSError:
            pass
        if time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError("facetalk serve did not start in time")
        time.sleep(0.2)


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    if proc.stderr is not None:
        proc.stderr.close()


async def _soak_clients(url: str, pcm: bytes, admitted: int, extra: int, extra_after_s: float) -> list[ClientRun]:
    first = [asyncio.create_task(realtime_client(url, pcm)) for _ in range(admitted)]
    await asyncio.sleep(extra_after_s)
    late = [asyncio.create_task(realtime_client(url, pcm[: len(pcm) - int(extra_after_s * SAMPLE_RATE) * 2]))
            for _ in range(extra)]
    return list(await asyncio.gather(*first, *late))


def soak(seconds: float = 180.0, clients: int | None = None, extra: int = 1, max_sessions: int | None = None,
         url: str | None = None, window_s: float = SOAK_WINDOW_S) -> dict[str, Any]:
    """`clients` real-time clients (default: as many as the server admits, by its own measurement)
    for `seconds`, plus `extra` more a few seconds later; per-client latency and what was refused."""
    proc = None
    if url is None:
        proc, base = start_server(max_sessions)
    else:
        base = url.rstrip("/")
    try:
        before = _status(base)
        rss_before = _proc_rss_mb(proc.pid) if proc else None
        n = before["max_live_sessions"] if clients is None else clients
        voice = _speech(seconds)
        pcm = (np.clip(voice, -1, 1) * 32767).astype("<i2").tobytes()
        ws_url = base.replace("http", "ws", 1) + "/avatars/default/live"
        load = os.getloadavg()[0]
        runs = asyncio.run(_soak_clients(ws_url, pcm, n, extra, extra_after_s=5.0))
        after = _status(base)
        rss_after = _proc_rss_mb(proc.pid) if proc else None
    finally:
        if proc is not None:
            stop_server(proc)
    served = [r for r in runs if r.refused is None]
    result: dict[str, Any] = {
        "soak_seconds": seconds, "clients": n + extra, "admitted": len(served),
        "refused": len(runs) - len(served), "max_live_sessions": before["max_live_sessions"],
        "live_capacity": before.get("live_capacity"), "loadavg_1min_at_start": round(load, 2),
        "loadavg_1min_at_end": round(os.getloadavg()[0], 2),
        "server_rss_mb_before": None if rss_before is None else round(rss_before, 1),
        "server_rss_mb_after": None if rss_after is None else round(rss_after, 1),
        "live_sessions_after": after["live_sessions"],
        "clients_detail": [r.summary(seconds, window_s) for r in runs],
    }
    if served:
        p95 = [c["latency_p95_ms"] for c in result["clients_detail"] if "refused" not in c]
        result["worst_p95_ms"] = max(p95)
        result["meets_target"] = bool(max(p95) <= SOAK_LATENCY_TARGET_MS)
    return result
