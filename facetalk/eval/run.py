"""The evaluation protocol: self-reenactment of real talking-face clips, measured side by side.

For each clip: its first frame with a face is the photo, its own sound track the voice; the
generator renders a video at the clip's frame rate through the same path a user takes
(`facetalk generate --full-frame`), and then the real clip and the generated file are measured by
the same code. The generated videos stay in REPORT_DIR/generated, to be watched.
"""

from __future__ import annotations

import os
import time
import wave
from collections.abc import Callable
from pathlib import Path

import numpy as np

from facetalk import __version__
from facetalk.errors import FacetalkError
from facetalk.eval import signals
from facetalk.eval.dlib_face import DlibFace
from facetalk.eval.measure import find_reference, measure_clip
from facetalk.eval.metrics import clip_metrics, paired_metrics
from facetalk.eval.report import (clip_ratios, contact_sheet, mean_metrics, plot_clip, plot_path, ratio_summary,
                                  sheet_path, write_report)
from facetalk.eval.series import ClipSeries
from facetalk.media._files import check_output_path
from facetalk.media.audio import SAMPLE_RATE, read_audio
from facetalk.media.image import write_image
from facetalk.motion.controls import Controls

VIDEO_SUFFIXES = (".mp4", ".avi", ".mpg", ".mpeg", ".mov", ".mkv", ".webm", ".m4v")
SILENT_DBFS = -50.0  # a clip whose loudest 20 ms stays under this has no speech to follow

Log = Callable[[str], None]


class SkipClip(Exception):
    """A clip the protocol cannot use; its message is the reason given in the report."""


def find_videos(folder: str | os.PathLike[str]) -> list[Path]:
    d = Path(folder)
    if not d.is_dir():
        raise FacetalkError(f"--videos {folder}: not a folder; give a folder of talking-face videos (mp4, avi, mpg)")
    files = sorted(p for p in d.iterdir() if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)
    if not files:
        raise FacetalkError(f"no videos in {folder}; it should hold talking-face clips ({', '.join(VIDEO_SUFFIXES)})")
    return files


def report_folder(out_dir: str | os.PathLike[str], videos_subfolder: str) -> Path:
    """The report folder, made with a subfolder for the videos it will hold."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise FacetalkError(f"--out {out_dir} is a file; give a folder for the report")
    (out / videos_subfolder).mkdir(parents=True, exist_ok=True)
    return out


def evaluate(videos: str | os.PathLike[str], out_dir: str | os.PathLike[str], *, controls: Controls = Controls(),
             log: Log = lambda _: None, transcripts: str | os.PathLike[str] | None = None,
             from_sound: bool = False) -> dict:
    """Run the protocol over every video in `videos`; write and return the report.

    transcripts: a folder of `<clip name>.txt`, the words each clip says: those clips are generated
    with their phones aligned to the words (`generate --text`), the others from the sound alone;
    either way the words' M, B and P are where `bilabials_shut` looks for shut lips.
    from_sound: generate every clip from the sound alone, the words serving only to measure."""
    files = find_videos(videos)
    words = read_transcripts(transcripts, files)
    out = report_folder(out_dir, "generated")
    faces = DlibFace.load()
    start = time.perf_counter()
    clips, skipped = [], []
    for path in files:
        t0 = time.perf_counter()
        try:
            clips.append(evaluate_clip(path, out, faces, controls, words.get(path.stem), from_sound))
            log(f"{path.stem}: done in {time.perf_counter() - t0:.1f} s")
        except SkipClip as why:
            skipped.append({"name": path.stem, "reason": str(why)})
            log(f"{path.stem}: skipped: {why}")
    report = {
        "facetalk_version": __version__,
        "videos": str(Path(videos).resolve()),
        "seconds": round(time.perf_counter() - start, 1),
        "clips": clips,
        "mean": mean_metrics(clips),
        "ratio_summary": ratio_summary(clips),
        "skipped": skipped,
    }
    write_report(report, out)
    return report


def read_transcripts(folder: str | os.PathLike[str] | None, files: list[Path]) -> dict[str, str]:
    """Clip name -> the words of its `<clip name>.txt` in `folder`, each checked against the
    dictionary before any clip is rendered: a misspelt word or folder fails in a second, not after
    an hour of clips."""
    if folder is None:
        return {}
    from facetalk.audio.transcript import words_of

    d = Path(folder)
    if not d.is_dir():
        raise FacetalkError(f"--transcripts {folder}: not a folder; give a folder of <clip name>.txt files")
    out = {}
    for path in files:
        text_file = d / f"{path.stem}.txt"
        if text_file.is_file():
            text = text_file.read_text(encoding="utf-8").strip()
            try:
                words_of(text)
            except FacetalkError as exc:
                raise FacetalkError(f"{text_file}: {exc}") from None
            out[path.stem] = text
    if not out:
        raise FacetalkError(f"--transcripts {folder}: no <clip name>.txt for any of the videos in it; "
                            "name each transcript after its clip")
    return out


def evaluate_clip(path: Path, out: Path, faces: DlibFace, controls: Controls, text: str | None = None,
                  from_sound: bool = False) -> dict:
    """One clip: generate its self-reenactment, measure both, draw them; SkipClip when unusable.
    text: the words the clip says, to find its M, B and P (and, unless from_sound, to generate with)."""
    name = path.stem
    try:
        reference = find_reference(path, faces)
        if reference is None:
            raise SkipClip("no face found in its first 5 s")
        samples = read_audio(path)[int(round(reference.time * SAMPLE_RATE)):]
    except FacetalkError as exc:  # unreadable file, no sound track, ...
        raise SkipClip(str(exc)) from exc
    if loudest_dbfs(samples) < SILENT_DBFS:
        raise SkipClip(f"silent audio (loudest 20 ms at {loudest_dbfs(samples):.0f} dBFS)")
    real = measure_clip(path, name, reference, faces, start=reference.time)

    gen_dir = out / "generated"
    photo = gen_dir / f"{name}_photo.png"
    write_image(photo, reference.image)
    voice: Path = path
    if reference.time > 0:  # the face appears late: the voice starts with it
        voice = write_wav(gen_dir / f"{name}_voice.wav", samples, SAMPLE_RATE)
    video = gen_dir / f"{name}.mp4"
    from facetalk.pipeline import render_video

    try:
        # Unmarked: the watermark's pattern, a new one for every track, moves dlib's points on a small
        # face as much as the head does (one GRID track read 0.21-0.55 deg of yaw spread under five
        # marks, 0.42 unmarked), so a change of under 0.02 deg anywhere read as a different head.
        summary = render_video(photo, voice, video, fps=real.series.fps, controls=controls, full_frame=True,
                               text=None if from_sound else text, watermark=False)
    except FacetalkError as exc:
        raise SkipClip(f"the generator failed: {exc}") from exc
    generated = measure_clip(video, name, reference, faces)

    plot_clip(plot_path(out, name), real.series, generated.series)
    write_image(sheet_path(out, name), contact_sheet(real.sheet, generated.sheet))
    spans = bilabial_spans(samples, text)
    real_metrics = {**clip_metrics(real), "bilabials_shut": bilabials_metric(real.series, spans)}
    gen_metrics = {**paired_metrics(real.series, generated.series), **clip_metrics(generated),
                   "bilabials_shut": bilabials_metric(generated.series, spans), "fps": summary.fps}
    return {"name": name, "real": real_metrics, "generated": gen_metrics,
            "ratios": clip_ratios(real_metrics, gen_metrics), "text": None if from_sound else text,
            "transcript": text}


def bilabial_spans(samples: np.ndarray, text: str | None) -> np.ndarray | None:
    """(N, 2) start and end (s) of every M, B and P of `text` aligned to the voice; None without a
    transcript, or where the words do not align to the sound."""
    if text is None:
        return None
    from facetalk.audio.transcript import align_phones

    phones = align_phones(samples, text, SAMPLE_RATE)
    if phones is None:
        return None
    keep = [i for i, label in enumerate(phones.labels) if label in ("M", "B", "P")]
    return np.column_stack([phones.starts[keep], phones.ends[keep]])


def bilabials_metric(series: ClipSeries, spans: np.ndarray | None) -> float | None:
    if spans is None:
        return None
    value = signals.bilabials_shut(series.mouth, spans, series.fps)
    return float(value) if np.isfinite(value) else None


def loudest_dbfs(samples: np.ndarray, rate: int = SAMPLE_RATE) -> float:
    n = max(1, rate // 50)
    x = np.asarray(samples, np.float64)
    if len(x) == 0:
        return -np.inf
    x = np.pad(x, (0, -len(x) % n)).reshape(-1, n)
    return float(10 * np.log10((x * x).mean(axis=1).max() + 1e-20))


def write_wav(path: Path, samples: np.ndarray, rate: int) -> Path:
    pcm = np.round(np.clip(samples, -1.0, 1.0) * 32767).astype("<i2")
    check_output_path(path)  # a device or pipe under this name is refused, not written into
    with wave.open(str(path), "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(rate)
        f.writeframes(pcm.tobytes())
    return path
