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
from collections.abc import Coroutine
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import cv2
import numpy as np

from facetalk.api import Avatar
from facetalk.media.audio import SAMPLE_RATE, read_audio
from facetalk.media.image import read_image
from facetalk.motion.controls import Controls
from facetalk.stream.protocol import FRAME_HEADER
from facetalk.stream.session import LiveFrame, Session

T = TypeVar("T")

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


# --- `facetalk bench --live --webrtc`: the WebRTC path on loopback, and beside the WebSocket one ---
#
# Clients are stream.webrtc_client's aiortc peers sending the built-in voice as their audio track in
# real time, as a browser's microphone would (its Opus packets made before the run: a browser's
# encoder runs on its own machine). What they measure is taken on the wire (each RTP packet's
# arrival, before aiortc's own jitter buffers), as a browser receives it, so only the quality run's
# client decodes what it receives (for PSNR); the others decode nothing, but still report on and
# acknowledge every packet as a browser does (receiver reports, bandwidth estimates, NACKs):
# - bitrate: the video's RTP payload per second;
# - PSNR: each decoded frame against the frame the server rendered (the quality run's server is in
#   this process, and a hook of stream.webrtc keeps the rendered frames);
# - latency: a frame's arrival minus the moment the client sent the sound that completes it (the
#   server says on the data channel where the client's sound starts on the session's timeline);
# - lips vs sound: a frame's arrival minus the arrival of the sound packet of the same session time
#   (positive: the picture comes later); raw, and less the server's designed lead of the sound
#   (stream.webrtc.AUDIO_LEAD_S: the sound leaves that much before its frame, both stamped on one
#   clock). A receiver that plays by the RTP stamps and sender reports (browsers, libwebrtc) is not
#   moved by when packets leave, only a reader that times by arrival, so `meets` judges the latter.
# The side-by-side run starts `facetalk serve` in its own process and, for n = 1, 2, ..., runs n
# real-time WebSocket clients, then n WebRTC clients, each for `seconds`: a transport sustains n
# sessions while every client's p95 latency is within the target and it gets >= 90 % of its frames.

RTC_LATENCY_TARGET_MS = 150.0
RTC_SYNC_TARGET_MS = 40.0
RTC_PSNR_TARGET_DB = 36.0
RTC_BITRATE_TARGET_MBPS = 1.5
MIN_FRAME_SHARE = 0.9


def _voice48(seconds: float) -> np.ndarray:
    from facetalk.media.audio import PcmResampler

    return PcmResampler(SAMPLE_RATE, 48000).feed(_speech(seconds))


def rtc_measures(received: Any, sent: list[float], fps: float = FPS,
                 rendered: dict[int, np.ndarray] | None = None) -> dict[str, Any]:
    """Bitrate, latency, lips-vs-sound offset (and PSNR given the rendered frames) of one client run."""
    video: dict[int, list[float]] = {}
    audio: dict[int, float] = {}
    v0 = a0 = None
    for kind, ts, when, size in received.wire:
        if kind == "video":
            v0 = ts if v0 is None else v0
            entry = video.setdefault((ts - v0) % 2**32, [when, 0])
            entry[0] = max(entry[0], when)
            entry[1] += size
        else:
            a0 = ts if a0 is None else a0
            audio.setdefault((ts - a0) % 2**32, when)
    out: dict[str, Any] = {"frames_received": len(video)}
    if len(video) > 1:
        arrivals = sorted(w for w, _ in video.values())
        out["bitrate_mbps"] = round(sum(b for _, b in video.values()) * 8 / (arrivals[-1] - arrivals[0]) / 1e6, 3)
    offsets = [1000 * (w - audio[round(ts / 90000 / 0.02) * 960]) for ts, (w, _) in video.items()
               if round(ts / 90000 / 0.02) * 960 in audio]
    if offsets:
        from facetalk.stream.webrtc import AUDIO_LEAD_S

        lead_ms = 1000 * AUDIO_LEAD_S
        out["audio_lead_ms"] = round(lead_ms, 1)
        for name, q in (("p5", 5), ("median", 50), ("p95", 95)):
            x = float(np.percentile(offsets, q))
            out[f"lips_minus_sound_ms_{name}"] = round(x, 1)  # raw, as it arrives
            out[f"lips_minus_sound_less_lead_ms_{name}"] = round(x - lead_ms, 1)
    sound = received.first("sound")
    if sound is not None and sent:
        at, start = sound["sound"]["at"], sound["sound"]["input"]
        lat = []
        for ts, (w, _) in video.items():
            x = ts / 90000 + 1 / fps - at + start  # the client's time of the end of this frame's sound
            k = int(np.ceil(x / 0.02 - 1e-6)) - 1
            if 0 <= k < len(sent):
                lat.append(1000 * (w - sent[k]))
        if lat:
            out.update(latency_p50_ms=round(float(np.percentile(lat, 50)), 1),
                       latency_p95_ms=round(float(np.percentile(lat, 95)), 1), latency_frames=len(lat))
    if rendered:
        psnr = []
        for pts, _, image in received.frames:
            original = rendered.get(round(pts * fps / 90000))
            if original is not None and image.shape == original.shape:
                mse = np.mean((image.astype(np.float32) - original.astype(np.float32)) ** 2)
                psnr.append(99.0 if mse == 0 else 10 * np.log10(255.0**2 / mse))
        if psnr:
            out.update(psnr_db_mean=round(float(np.mean(psnr)), 2), psnr_db_min=round(float(np.min(psnr)), 2),
                       psnr_frames=len(psnr))
    return out


def in_process_server(config: Any) -> Any:
    """`facetalk serve`'s app under uvicorn in a thread of this process: a context manager of
    (base URL, app), so a measuring hook can reach the server's objects."""
    import contextlib
    import socket

    import uvicorn

    from facetalk.stream.server import create_app

    @contextlib.contextmanager
    def run() -> Any:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        app = create_app(config)
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        deadline = time.monotonic() + 180
        while not server.started and thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        if not server.started:
            server.should_exit = True
            sock.close()
            raise RuntimeError("the in-process server did not start")
        try:
            yield f"http://127.0.0.1:{sock.getsockname()[1]}", app
        finally:
            server.should_exit = True
            thread.join(timeout=10)
            sock.close()

    return run()


async def rtc_client_run(base: str, voice48: np.ndarray, decode: bool = False) -> tuple[Any, dict[str, Any]]:
    """One WebRTC client sending `voice48` in real time, then ending; (client, end message). It
    decodes what it receives only when asked (for PSNR): the rest is measured on the wire."""
    from facetalk.stream.webrtc_client import WebRTCClient

    client = WebRTCClient(base, voice=voice48, wire=True, decode=decode)
    try:
        await client.connect()
        while not client.voice.done:
            await asyncio.sleep(0.05)
        end = await client.end()
        await asyncio.sleep(0.3)  # the last frames leave after the end message
    finally:
        await client.close()
    return client, end


def rtc_quality(seconds: float) -> dict[str, Any]:
    """One WebRTC session against a server in this process, whose rendered frames are kept."""
    from facetalk.stream.config import ServerConfig

    rendered: dict[int, np.ndarray] = {}
    with in_process_server(ServerConfig(max_sessions=2, record=False)) as (base, app):
        app.state.facetalk.webrtc.tap = lambda peer, frame: rendered.__setitem__(frame.index, frame.image)
        client, end = asyncio.run(rtc_client_run(base, _voice48(seconds), decode=True))
    out = rtc_measures(client.received, client.voice.sent, rendered=rendered)
    out.update(frames_sent=end["frames"] - end["dropped"] - end["skipped"], frames_dropped=end["dropped"],
               frames_skipped=end["skipped"], session_seconds=end["seconds"])
    return out


def run_clients(main: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run` on uvloop, the loop the server runs on, where it is installed (uvicorn[standard]
    brings it): the clients share the server's cores, so their event loop should cost no more than
    its. Both transports' clients run on it, so they are compared alike."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)


def _cpu_s(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


async def _rtc_clients(base: str, voice48: np.ndarray, n: int) -> list[dict[str, Any]]:
    runs = await asyncio.gather(*(rtc_client_run(base, voice48) for _ in range(n)), return_exceptions=True)
    out = []
    for run in runs:
        if isinstance(run, BaseException):
            out.append({"error": f"{type(run).__name__}: {run}"})
        else:
            client, end = run
            out.append({**rtc_measures(client.received, client.voice.sent), "clock_frames": end["frames"],
                        "dropped": end["dropped"]})
    return out


def side_by_side(seconds: float, max_sessions: int) -> dict[str, Any]:
    """n = 1, 2, ... real-time WebSocket clients, then as many WebRTC clients, against one server;
    how many each transport sustains, and the server's CPU per session-second of each."""
    proc, base = start_server(max_sessions=max_sessions)
    ws_url = base.replace("http", "ws", 1) + "/avatars/default/live"
    voice = _speech(seconds)
    pcm = (np.clip(voice, -1, 1) * 32767).astype("<i2").tobytes()
    voice48 = _voice48(seconds)
    result: dict[str, Any] = {"loadavg_1min_at_start": round(os.getloadavg()[0], 2)}
    sustained = {"ws": 0, "webrtc": 0}
    going = {"ws": True, "webrtc": True}
    try:
        for n in range(1, max_sessions + 1):
            for kind in ("ws", "webrtc"):
                if not going[kind]:
                    continue
                cpu = _cpu_s(proc.pid)
                t = time.monotonic()
                if kind == "ws":
                    runs = run_clients(_soak_clients(ws_url, pcm, n, 0, 0.0))
                    clients = [r.summary(seconds) for r in runs]
                    ok = all("refused" not in c and c["latency_p95_ms"] <= RTC_LATENCY_TARGET_MS
                             and c["frames"] >= MIN_FRAME_SHARE * c["clock_frames"] for c in clients)
                else:
                    clients = run_clients(_rtc_clients(base, voice48, n))
                    ok = all("error" not in c and c.get("latency_p95_ms", np.inf) <= RTC_LATENCY_TARGET_MS
                             and c["frames_received"] >= MIN_FRAME_SHARE * c["clock_frames"] for c in clients)
                wall = time.monotonic() - t
                p95 = max((c.get("latency_p95_ms", np.inf) for c in clients), default=np.inf)
                result[f"{kind}_{n}_sessions"] = {"worst_p95_ms": p95 if np.isfinite(p95) else None, "ok": ok,
                                                  "server_cpu_ms_per_session_s": round(
                                                      1000 * (_cpu_s(proc.pid) - cpu) / (n * wall), 1),
                                                  "clients": clients}
                if ok:
                    sustained[kind] = n
                else:
                    going[kind] = False
            if not any(going.values()):
                break
    finally:
        stop_server(proc)
    result.update(ws_sessions_sustained=sustained["ws"], webrtc_sessions_sustained=sustained["webrtc"],
                  sessions_tried=n)
    return result


def rtc_memory(minutes: float) -> dict[str, Any]:
    """The server's RSS over one WebRTC session of `minutes` (its own process), sampled every 10 s:
    after the first minute, at each minute after (a plateau reads as flat, a leak as a slope) and at
    the end (the recording written)."""
    proc, base = start_server(max_sessions=2)
    rss: list[float] = []

    async def watch(task: asyncio.Future[Any]) -> None:
        while not task.done():
            rss.append(_proc_rss_mb(proc.pid))
            await asyncio.wait({task}, timeout=10)

    async def main() -> None:
        task = asyncio.ensure_future(rtc_client_run(base, _voice48(60 * minutes)))
        await watch(task)
        await task

    try:
        before = _proc_rss_mb(proc.pid)
        run_clients(main())
    finally:
        stop_server(proc)
    return {"webrtc_memory_minutes": minutes, "server_rss_mb_before": round(before, 1),
            "server_rss_mb_after_1min": round(rss[min(6, len(rss) - 1)], 1), "server_rss_mb_at_end": round(rss[-1], 1),
            "server_rss_growth_mb_after_1min": round(rss[-1] - rss[min(6, len(rss) - 1)], 1),
            "server_rss_mb_by_minute": [round(x, 1) for x in rss[6::6]]}


def measure_webrtc(seconds: float = 12.0, max_sessions: int = 6, memory_minutes: float = 2.0) -> dict[str, Any]:
    """`facetalk bench --live --webrtc`: quality and timing of one session, then both transports
    side by side, then memory over a session; with the targets each figure is held to."""
    cv2.setNumThreads(1)
    quality = rtc_quality(seconds)
    # That session's client and server share one interpreter (to compare the frames sent with those
    # rendered), so its timing is the two fighting over one GIL; the latency that counts is the
    # first session of the side-by-side run, against a server in its own process as deployed.
    for k in ("latency_p50_ms", "latency_p95_ms"):
        quality[k + "_in_process"] = quality.pop(k, None)
    result: dict[str, Any] = {"webrtc_" + k: v for k, v in quality.items()}
    result.update(side_by_side(seconds, max_sessions))
    solo = [c for c in result.get("webrtc_1_sessions", {}).get("clients", []) if "latency_p95_ms" in c]
    latency_p95 = solo[0]["latency_p95_ms"] if solo else np.inf
    if solo:
        result.update(webrtc_latency_p50_ms=solo[0]["latency_p50_ms"], webrtc_latency_p95_ms=latency_p95)
    if memory_minutes > 0:
        result.update(rtc_memory(memory_minutes))
    result["targets"] = {
        "bitrate_mbps_max": RTC_BITRATE_TARGET_MBPS, "psnr_db_min": RTC_PSNR_TARGET_DB,
        "latency_p95_ms_max": RTC_LATENCY_TARGET_MS, "lips_minus_sound_ms_within": RTC_SYNC_TARGET_MS}
    result["meets"] = {
        "bitrate": quality.get("bitrate_mbps", np.inf) <= RTC_BITRATE_TARGET_MBPS,
        "psnr": quality.get("psnr_db_mean", 0) >= RTC_PSNR_TARGET_DB,
        "latency": latency_p95 <= RTC_LATENCY_TARGET_MS,
        "lip_sync": max(abs(quality.get("lips_minus_sound_less_lead_ms_p5", np.inf)),
                        abs(quality.get("lips_minus_sound_less_lead_ms_p95", np.inf))) <= RTC_SYNC_TARGET_MS,
        "concurrency": result["webrtc_sessions_sustained"] >= result["ws_sessions_sustained"]}
    result.update(fps=FPS, seconds=seconds, size=512)
    return result
