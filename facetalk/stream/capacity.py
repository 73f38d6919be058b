"""How many live sessions this server can serve in real time, measured on the machine it runs on.

The probe does what the live sessions will do, all at once, as fast as it can: one thread per
usable core, each a Session on the built-in portrait fed the built-in voice, every frame rendered,
watermarked and JPEG-encoded (and written to a recording when recording is on). Frames made per
wall second, over all threads, is what the machine gives live sessions now: its cores, the GIL,
the encoders and whatever else is running on it at the time. The server admits

    sessions = floor(headroom * frames_per_s / fps)    (at least 1)

so that the sessions it admits leave `headroom` of slack for bursts and sending (a server run at
100 % queues). It takes about a second, at start-up (with the warm-up) or, when the server is not
warmed, before the first live session. A busy machine at that moment gives a smaller number: the
limit errs on the side of staying live, and shedding (stream.shedding) covers what changes later.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from facetalk.api import Avatar
from facetalk.media.audio import SAMPLE_RATE, read_audio
from facetalk.stream.protocol import encode_frame
from facetalk.stream.recording import Recorder

PROBE_SECONDS = 1.2  # of speech per thread, timed (after WARM_SECONDS untimed)
WARM_SECONDS = 0.2
PUSH_SAMPLES = SAMPLE_RATE // 5  # as the server pushes


@dataclass(frozen=True)
class Capacity:
    sessions: int  # live sessions admitted at once
    frames_per_s: float  # frames (rendered + encoded) per wall second, all probe threads together
    ms_per_frame: float  # wall time of one frame in one thread, while all ran
    threads: int
    headroom: float
    seconds: float  # the probe's own wall time

    def json(self) -> dict[str, Any]:
        return {k: (round(v, 2) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def sessions_for(frames_per_s: float, fps: float, headroom: float) -> int:
    """Sessions at `fps` that fill `headroom` of a measured throughput: at least one."""
    return max(1, math.floor(headroom * frames_per_s / fps + 1e-9))


def measure_capacity(avatar: Avatar, fps: float, headroom: float, record: bool, workdir: Path | None = None,
                     threads: int | None = None, seconds: float = PROBE_SECONDS) -> Capacity:
    """Run the probe (see the module's doc) and say how many sessions fit."""
    threads = threads or max(2, usable_cores())
    voice = read_audio(Path(str(resources.files("facetalk.assets") / "voice.wav")))
    warm_n, timed_n = int(WARM_SECONDS * SAMPLE_RATE), int(seconds * SAMPLE_RATE)
    speech = np.tile(voice, int(np.ceil((warm_n + timed_n) / len(voice))))
    start = threading.Barrier(threads + 1)
    done = [0] * threads
    spent = [0.0] * threads
    errors: list[BaseException] = []
    folder = Path(tempfile.mkdtemp(prefix="probe-", dir=workdir))

    def run(k: int) -> None:
        recorder = Recorder(folder / f"r{k}", avatar.rig.size, fps) if record else None
        try:
            session = avatar.stream(fps=fps)
            offset = len(voice) * k // threads  # each thread says something else
            audio = np.roll(speech, -offset)
            _frames(session, audio[:warm_n], recorder)  # first-use costs: encoders opened, caches filled
            start.wait()
            t = time.perf_counter()
            done[k] = _frames(session, audio[warm_n:warm_n + timed_n], recorder)
            spent[k] = time.perf_counter() - t
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            errors.append(exc)
            start.abort()
        finally:
            if recorder is not None:
                recorder.abort()

    workers = [threading.Thread(target=run, args=(k,), name=f"facetalk-probe-{k}") for k in range(threads)]
    for w in workers:
        w.start()
    try:
        start.wait()
    except threading.BrokenBarrierError:
        pass
    t0 = time.perf_counter()
    for w in workers:
        w.join()
    wall = time.perf_counter() - t0
    shutil.rmtree(folder, ignore_errors=True)
    if errors:
        raise errors[0]
    total = sum(done)
    frames_per_s = total / wall
    per_frame = float(np.mean([s / max(d, 1) for s, d in zip(spent, done)]))
    return Capacity(sessions_for(frames_per_s, fps, headroom), frames_per_s, 1000 * per_frame, threads, headroom, wall)


def _frames(session: Any, audio: np.ndarray, recorder: Recorder | None) -> int:
    n = 0
    for i in range(0, len(audio), PUSH_SAMPLES):
        for frame in session.push(audio[i:i + PUSH_SAMPLES]):
            encode_frame(frame.index, frame.time, frame.image)
            if recorder is not None:
                recorder.add_frame(frame.image)
            n += 1
    return n
