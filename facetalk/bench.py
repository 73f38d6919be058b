"""`facetalk bench`: speed of each stage and of the whole job, measured on this machine;
`facetalk bench --watermark`: the watermark's cost, invisibility, robustness and false alarms.

render_fps: 512² frames rendered per second on one thread (rendering only, motion precomputed).
e2e_fps: output frames per wall second of `generate` (photo + audio -> MP4, everything included).
rig_ms: photo -> FaceRig, median of warm runs (rig_first_ms: the first in a process, which also
imports MediaPipe: ~0.33 s, most of it the matplotlib import its package __init__ makes).
"""

from __future__ import annotations

import itertools
import json
import statistics
import sys
import tempfile
import time
import wave
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import cv2
import numpy as np

from facetalk.audio.features import audio_features
from facetalk.errors import FacetalkError
from facetalk.face.rig import build_rig
from facetalk.media.audio import SAMPLE_RATE, read_audio
from facetalk.media.image import read_image
from facetalk.media.video import read_video_frames, sample_video_frames
from facetalk.motion.controls import Controls
from facetalk.motion.generate import generate
from facetalk.pipeline import features_from_audio, frames, render_video, rig_from_photo, write_video
from facetalk.render.renderer import Renderer
from facetalk.safety.attacks import ATTACKS, EXTRA_ATTACKS, NULL_ATTACKS, decode_luma, encode_h264
from facetalk.safety.detect import THRESHOLD, Detection, detect
from facetalk.safety.payload import Payload
from facetalk.safety.verify import MAX_FRAMES
from facetalk.safety.watermark import Watermarker

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
              live_minutes: float = 10.0, idle_minutes: float = 60.0, soak: bool = False, soak_minutes: float = 3.0, clients: int | None = None,
              max_sessions: int | None = None, url: str | None = None) -> dict[str, float]:
    if live and soak:
        from facetalk.stream.bench import soak as run_soak

        result = run_soak(60 * soak_minutes, clients=clients, max_sessions=max_sessions, url=url)
    elif live:
        from facetalk.stream.bench import measure_live

        result = measure_live(image, memory_minutes=live_minutes, idle_minutes=idle_minutes)
    else:
        result = measure(image, seconds)
    if as_json:
        print(json.dumps(result))
    else:
        details = result.get("clients_detail", [])
        width = max(len(k) for k in result)
        for key, value in result.items():
            if key != "clients_detail":
                print(f"{key:<{width}}  {value}")
        for k, client in enumerate(details):
            print(f"client {k + 1}: " + ", ".join(f"{key} {value}" for key, value in client.items()))
    return result


# --- `facetalk bench --watermark`: the watermark's cost, invisibility, robustness and false alarms ---
#
# Marked content is what facetalk renders: 3-second clips written by the product's own writer
# (`write_video`), from the built-in portrait and, where ../shared/eval/images exists, the
# evaluation portraits, with a different seed and stretch of the built-in voice per clip. Each file
# is attacked (safety.attacks) and checked by the detector `facetalk verify` uses. False alarms are
# counted on the same clips rendered with the watermark off (as written and after three attacks)
# and on real videos (../shared/eval/video_real or --real DIR) and their re-encodes.

WM_CLIP_SECONDS = 3.0
SHARED_EVAL = Path(__file__).resolve().parents[2] / "shared" / "eval"
VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".webm", ".avi", ".mpg")
REAL_MAX_FRAMES = 200  # of each real video, for its re-encodes


@dataclass
class Tally:
    """Detections of one condition over many videos."""

    found: int = 0
    payload_ok: int = 0
    scores: list[float] = field(default_factory=list)

    def add(self, d: Detection, payload: Payload | None = None) -> None:
        self.found += d.found
        self.payload_ok += d.found and payload is not None and d.payload == payload
        self.scores.append(d.score)

    def summary(self, marked: bool) -> dict[str, float | int]:
        n, s = len(self.scores), self.scores or [0.0]
        if not marked:
            return {"trials": n, "false_positives": self.found, "max_score": round(max(s), 2)}
        return {"trials": n, "detected": round(self.found / max(1, n), 4),
                "payload_ok": round(self.payload_ok / max(1, n), 4),
                "min_score": round(min(s), 2), "median_score": round(statistics.median(s), 2)}


def measure_watermark(clips: int = 24, real: str | None = None,
                      log: Callable[[str], None] = lambda line: None) -> dict:
    started = time.perf_counter()
    rng = np.random.default_rng(7)
    portraits = _portraits()
    attacks = ATTACKS | EXTRA_ATTACKS
    marked = {name: Tally() for name in ["as_written", *attacks]}
    unmarked = {name: Tally() for name in ["as_written", *NULL_ATTACKS]}
    psnr: list[float] = []
    embed_ms: list[float] = []
    used: list[str] = []
    voice = read_audio(_demo_asset("voice.wav"))
    with tempfile.TemporaryDirectory() as tmp:
        for attempt in range(3 * clips):
            if len(used) >= clips:
                break
            photo_path = portraits[attempt % len(portraits)]
            try:
                rig, photo = rig_from_photo(photo_path)
            except FacetalkError:  # e.g. no face in it
                continue
            i = len(used)
            wav = Path(tmp) / f"voice{i}.wav"
            _write_wav(wav, _voice_cut(voice, i), SAMPLE_RATE)
            controls = Controls(seed=i)
            for watermark in (True, False):
                out = Path(tmp) / f"clip{i}_{int(watermark)}.mp4"
                summary = write_video(rig, photo, wav, out, controls=controls, watermark=watermark)
                payload = None if summary.watermark_id is None else Payload(int(summary.watermark_id, 16))
                written = [f for _, f in read_video_frames(out)]
                tallies, names = (marked, tuple(attacks)) if watermark else (unmarked, NULL_ATTACKS)
                tallies["as_written"].add(detect(sample_video_frames(out, MAX_FRAMES)), payload)
                for name in names:
                    tallies[name].add(detect(decode_luma(attacks[name](written, rng))), payload)
            track = generate(features_from_audio(wav, 25.0), controls)
            embed_ms.append(_embed_cost(list(frames(rig, track)), psnr))
            used.append(Path(photo_path).name)
            log(f"clip {i + 1}/{clips} ({used[-1]}): scores "
                + ", ".join(f"{k} {t.scores[-1]:.1f}" for k, t in marked.items()))
    return {
        "embed_ms_per_frame_512": round(statistics.median(embed_ms), 3),
        "embed_ms_per_frame_1080p": round(_embed_cost([_still_1080p()] * 30, []), 3),
        "psnr_db_min": round(min(psnr), 2),
        "psnr_db_mean": round(statistics.fmean(psnr), 2),
        "threshold": THRESHOLD,
        "clips": len(used),
        "portraits": len(set(used)),
        "marked": {k: t.summary(True) for k, t in marked.items()},
        "unmarked_generated": {k: t.summary(False) for k, t in unmarked.items()},
        "unmarked_real": {k: t.summary(False) for k, t in _real_videos(real, log).items()},
        "seconds": round(time.perf_counter() - started, 1),
    }


def run_watermark_bench(clips: int = 24, real: str | None = None, as_json: bool = False) -> dict:
    if clips < 1:
        raise FacetalkError(f"--clips must be at least 1, got {clips}")
    if real is not None and not Path(real).is_dir():
        raise FacetalkError(f"--real: '{real}' is not a folder; pass a folder of real videos")
    result = measure_watermark(clips, real, log=lambda line: print(f"facetalk bench: {line}", file=sys.stderr))
    if as_json:
        print(json.dumps(result, indent=2))
        return result
    print(f"embedding: {result['embed_ms_per_frame_512']} ms per 512² frame, "
          f"{result['embed_ms_per_frame_1080p']} ms per 1920×1080 frame (one thread)")
    print(f"PSNR against the unmarked frame: min {result['psnr_db_min']} dB, mean {result['psnr_db_mean']} dB")
    print(f"marked: {result['clips']} clips of {WM_CLIP_SECONDS:g} s from {result['portraits']} portrait(s), "
          f"threshold {THRESHOLD:g}")
    width = max(len(name) for name in result["marked"])
    for name, s in result["marked"].items():
        print(f"  {name:<{width}}  detected {100 * s['detected']:6.2f} %   id read {100 * s['payload_ok']:6.2f} %"
              f"   min score {s['min_score']:5.1f}")
    print("unmarked:")
    for group in ("unmarked_generated", "unmarked_real"):
        for name, s in result[group].items():
            label = f"{group.removeprefix('unmarked_')} {name}"
            print(f"  {label:<{width}}  false positives {s['false_positives']}/{s['trials']}"
                  f"   max score {s['max_score']}")
    print(f"({result['seconds']} s)")
    return result


def _portraits() -> list[str]:
    found = [str(_demo_asset("portrait.png"))]
    images = SHARED_EVAL / "images"
    if images.is_dir():
        found += sorted(str(p) for p in images.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png", ".webp"))
    return found


def _voice_cut(voice: np.ndarray, i: int) -> np.ndarray:
    """WM_CLIP_SECONDS of the built-in voice, starting 0.7 s further in for each clip (wrapping)."""
    n = int(WM_CLIP_SECONDS * SAMPLE_RATE)
    start = (i * SAMPLE_RATE * 7 // 10) % max(1, len(voice) - n)
    return voice[start : start + n]


def _embed_cost(clean: list[np.ndarray], psnr: list[float]) -> float:
    """Median ms of `Watermarker.mark` on one thread over `clean`; appends each frame's PSNR."""
    marker = Watermarker(Payload.new())
    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        marker.mark(clean[0])  # builds the tiled pattern for this size
        times = []
        for f in clean:
            t = time.perf_counter()
            out = marker.mark(f)
            times.append(time.perf_counter() - t)
            mse = float(np.mean((out.astype(np.float32) - f) ** 2))
            psnr.append(10 * float(np.log10(255.0**2 / max(mse, 1e-12))))
    finally:
        cv2.setNumThreads(threads)
    return 1000 * statistics.median(times)


def _still_1080p() -> np.ndarray:
    """The demo portrait stretched to a full-HD frame: the cost of marking a --full-frame output."""
    return np.ascontiguousarray(cv2.resize(read_image(_demo_asset("portrait.png")), (1920, 1080)))


def _real_videos(folder: str | None, log: Callable[[str], None]) -> dict[str, Tally]:
    path = Path(folder) if folder else SHARED_EVAL / "video_real"
    if not path.is_dir():
        log(f"no real videos at {path}: false positives on real video not measured")
        return {}
    tallies = {name: Tally() for name in ["as_is", "reencode_crf28", "downscale_half"]}
    rng = np.random.default_rng(0)
    for video in sorted(p for p in path.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES):
        rgb = [f for _, f in itertools.islice(read_video_frames(video), REAL_MAX_FRAMES)]
        h, w = rgb[0].shape[:2]
        tallies["as_is"].add(detect(sample_video_frames(video, MAX_FRAMES)))
        tallies["reencode_crf28"].add(detect(decode_luma(ATTACKS["reencode_crf28"](rgb, rng))))
        tallies["downscale_half"].add(detect(decode_luma(encode_h264([cv2.resize(f, (w // 2, h // 2),
                                                                                 interpolation=cv2.INTER_AREA)
                                                                      for f in rgb]))))
        log(f"real {video.name}: scores " + ", ".join(f"{k} {t.scores[-1]:.1f}" for k, t in tallies.items()))
    return tallies
