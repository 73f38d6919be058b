"""Turn the measurements of real and generated clips into a report people can read and tools can parse.

The evaluation compares each real clip with its self-reenactment, so every number is shown as a
pair, ``real → generated``: the real clip is the yardstick (real people also blink, move and
drift), and a metric only means something next to its real value. ``report.json`` keeps the
numbers for scripts, ``report.md`` is the page to read, and the per-clip plots and contact
sheets show *where* in time a number comes from.

matplotlib and OpenCV are imported inside the functions that draw, so importing this module
(e.g. from the CLI) stays instant.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np

from facetalk.eval.series import ClipSeries
from facetalk.media._files import check_output_path, create_partial_file, remove_quietly, replace_output

METRICS: tuple[str, ...] = (
    "mouth_corr",
    "mouth_corr_synced",
    "lmd",
    "closure_recall",
    "bilabials_shut",
    "av_corr",
    "av_offset_frames",
    "dP",
    "yaw_sd",
    "pitch_sd",
    "roll_sd",
    "blinks_per_min",
    "gaze_sd",
    "id_distance",
    "id_match",
    "sharpness_ratio",
    "background_psnr",
    "jitter",
    "fps",
)

# How far the face moves (amplitudes) and how the head's motion splits into slow turns and quick
# nods: a table of their own in report.md, after the correlations and lags of METRICS.
_FACE_AMPLITUDES = ("mouth_open_sd", "mouth_open_range", "lip_dynamics", "silent_lip_mad", "brow_sd", "smile_sd",
                    "mouth_width_sd", "eye_open_sd")
AMPLITUDE_METRICS: tuple[str, ...] = _FACE_AMPLITUDES + ("yaw_slow_share", "pitch_slow_share", "roll_slow_share")

# Amplitudes compared as generated / real per clip: < 1 the generated face moves less than the
# real person did. A share is not an amplitude (its ratio says nothing about "how far"), so the
# slow shares are left out.
RATIO_METRICS: tuple[str, ...] = _FACE_AMPLITUDES + ("yaw_sd", "pitch_sd", "roll_sd")

ALL_METRICS: tuple[str, ...] = METRICS + AMPLITUDE_METRICS

# Metrics that compare the generated clip with the real one (or time the generator): a real clip
# has no value of its own, so the table shows a single number.
GENERATED_ONLY: frozenset[str] = frozenset({"mouth_corr", "mouth_corr_synced", "lmd", "closure_recall", "fps"})

UNITS: dict[str, str] = {
    "mouth_corr": "r",
    "mouth_corr_synced": "r",
    "lmd": "% IOD",
    "closure_recall": "share",
    "bilabials_shut": "share",
    "av_corr": "r",
    "av_offset_frames": "frames",
    "dP": "°/frame",
    "yaw_sd": "°",
    "pitch_sd": "°",
    "roll_sd": "°",
    "blinks_per_min": "1/min",
    "gaze_sd": "% eye width",
    "id_distance": "dlib distance",
    "id_match": "share",
    "sharpness_ratio": "ratio",
    "background_psnr": "dB",
    "jitter": "% IOD",
    "fps": "frames/s",
    "mouth_open_sd": "% face height",
    "mouth_open_range": "% face height",
    "lip_dynamics": "10⁻³ IOD²",
    "silent_lip_mad": "% face height",
    "brow_sd": "% IOD",
    "smile_sd": "% IOD",
    "mouth_width_sd": "% IOD",
    "eye_open_sd": "EAR",
    "yaw_slow_share": "share",
    "pitch_slow_share": "share",
    "roll_slow_share": "share",
}

DESCRIPTIONS: dict[str, str] = {
    "mouth_corr": "Pearson r of the generated vs the real mouth opening, frame by frame (generated only).",
    "mouth_corr_synced": "the same after moving the real mouth back by the real clip's own AV offset "
    "(generated only).",
    "lmd": "mouth-landmark distance to the real clip after aligning the faces, "
    "% of the inter-ocular distance (generated only).",
    "closure_recall": "share of the real lips' closures within speech (inner-lip gap ≤ 2.5 % of the face height "
    "with speech within 0.3 s either side: M/B/P, nearly W and F) that the generated lips match within ±2 frames "
    "(generated only; – when the real lips never shut in speech).",
    "bilabials_shut": "share of the M, B and P sounds (the clip's transcript aligned to its voice, "
    "`--transcripts`) at which the lips shut (inner-lip gap ≤ 2.5 % of the face height within the phone ± 1 frame); "
    "– without a transcript.",
    "av_corr": "mouth opening vs speech-band loudness, Pearson r at the best lag within ±6 frames.",
    "av_offset_frames": "that best lag, in frames (+ = mouth moves after the sound).",
    "dP": "mean |frame-to-frame change| of yaw, pitch and roll, degrees.",
    "yaw_sd": "standard deviation of the head yaw, degrees.",
    "pitch_sd": "standard deviation of the head pitch, degrees.",
    "roll_sd": "standard deviation of the head roll, degrees.",
    "blinks_per_min": "blinks per minute.",
    "gaze_sd": "spread of the iris position, % of the eye width.",
    "id_distance": "dlib 128-d face embedding distance to the photo (< 0.6 = same person).",
    "id_match": "share of frames whose embedding distance to the photo is < 0.6.",
    "sharpness_ratio": "variance of the Laplacian of the face region / that of the photo.",
    "background_psnr": "PSNR of the area outside the person, frame 0 vs each frame, dB.",
    "jitter": "mean |2nd difference| of the rigid landmarks, % of the inter-ocular distance.",
    "fps": "generation speed, output frames per wall-clock second (generated only).",
    "mouth_open_sd": "standard deviation of the mouth opening (inner-lip gap / face height), % of face height.",
    "mouth_open_range": "95th minus 5th percentile of the mouth opening, % of face height.",
    "lip_dynamics": "temporal variance of the 190 pairwise distances of the 20 mouth points over the "
    "inter-ocular distance, mean over pairs, ×1000 (THEval).",
    "silent_lip_mad": "median absolute deviation of the mouth opening in pauses (≥ 0.3 s more than 25 dB "
    "under the speech level, 0.1 s next to speech left out), % of face height: lips that twitch in silence.",
    "brow_sd": "standard deviation of the brow height above the eye centres, roll levelled, landmark "
    "failures and the part that follows the pitch removed, % IOD.",
    "smile_sd": "standard deviation of the mouth corners' height above the lip midpoints, treated as brow_sd, % IOD.",
    "mouth_width_sd": "standard deviation of the corner-to-corner mouth width, landmark failures removed, % IOD.",
    "eye_open_sd": "standard deviation of the eye aspect ratio outside blinks (± 2 frames).",
    "yaw_slow_share": "share of the yaw variance below 0.5 Hz (phrase-level turns; the rest: quick nods).",
    "pitch_slow_share": "share of the pitch variance below 0.5 Hz.",
    "roll_slow_share": "share of the roll variance below 0.5 Hz.",
}

# Decimals per metric: enough to tell two good systems apart, not more than the measurement holds.
_DECIMALS: dict[str, int] = {
    "mouth_corr": 2,
    "mouth_corr_synced": 2,
    "lmd": 1,
    "closure_recall": 2,
    "bilabials_shut": 2,
    "av_corr": 2,
    "av_offset_frames": 0,
    "dP": 2,
    "yaw_sd": 1,
    "pitch_sd": 1,
    "roll_sd": 1,
    "blinks_per_min": 1,
    "gaze_sd": 1,
    "id_distance": 2,
    "id_match": 2,
    "sharpness_ratio": 2,
    "background_psnr": 1,
    "jitter": 2,
    "fps": 1,
    "mouth_open_sd": 2,
    "mouth_open_range": 1,
    "lip_dynamics": 2,
    "silent_lip_mad": 2,
    "brow_sd": 2,
    "smile_sd": 2,
    "mouth_width_sd": 2,
    "eye_open_sd": 3,
    "yaw_slow_share": 2,
    "pitch_slow_share": 2,
    "roll_slow_share": 2,
}
_DEFAULT_DECIMALS = 2
_SIDES = ("real", "generated")
_MISSING = "–"
_ARROW = "→"

_PLOT_SIZE_IN = (14.0, 11.0)  # at 100 dpi: 1400 × 1100 px
_PLOT_DPI = 100
_REAL_COLOUR = "#1f77b4"
_GEN_COLOUR = "#d62728"
_ANGLE_COLOURS = ("#1f77b4", "#2ca02c", "#ff7f0e")  # yaw, pitch, roll
_BROW_COLOUR = "#8c564b"
_SMILE_COLOUR = "#9467bd"
# legends sit above each panel, right of its title, so they never hide a curve
_LEGEND_ABOVE: dict[str, Any] = dict(loc="lower right", bbox_to_anchor=(1.0, 1.0), fontsize=9, frameon=False,
                                     borderaxespad=0.2, handlelength=2.5)

_SHEET_GAP = 4  # white px between cells
_SHEET_FONT_SCALE = 0.5


# ---------------------------------------------------------------------------------------------
# numbers


def plot_path(out_dir: Path, name: str) -> Path:
    """Where the time-series plot of clip ``name`` lives, so writer and report agree on it."""
    return Path(out_dir) / f"{name}_plot.png"


def sheet_path(out_dir: Path, name: str) -> Path:
    """Where the contact sheet of clip ``name`` lives, so writer and report agree on it."""
    return Path(out_dir) / f"{name}_frames.png"


def _number(value: Any) -> float | None:
    """``value`` as a float, or None when it is missing or NaN (a metric that could not be measured)."""
    if value is None or isinstance(value, (str, bytes)):
        return None
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(x) else x


def mean_metrics(clips: list[dict]) -> dict:
    """Mean of every metric over the clips, per side, skipping None and NaN.

    A clip where a metric could not be measured (no face, no speech) must not drag the mean to
    NaN nor count as zero, so it simply does not vote; a metric no clip could measure is None.
    Metrics come out in report order (ALL_METRICS first, then any others in order of appearance).
    """
    out: dict[str, dict[str, float | None]] = {}
    for side in _SIDES:
        values: dict[str, list[float]] = {}
        for clip in clips:
            for metric, value in (clip.get(side) or {}).items():
                bucket = values.setdefault(metric, [])
                x = _number(value)
                if x is not None:
                    bucket.append(x)
        out[side] = {
            m: (float(np.mean(values[m])) if values[m] else None) for m in _ordered_metrics(values)
        }
    return out


def _ordered_metrics(names: Iterable[str]) -> list[str]:
    """ALL_METRICS in report order that occur in ``names``, then the unknown ones as they came."""
    seen = list(dict.fromkeys(names))
    return [m for m in ALL_METRICS if m in seen] + [m for m in seen if m not in ALL_METRICS]


def clip_ratios(real: Mapping[str, Any], generated: Mapping[str, Any]) -> dict[str, float | None]:
    """generated / real of every RATIO_METRICS amplitude of one clip; None where either side is
    missing or the real clip did not move at all (a ratio to zero says nothing)."""
    out: dict[str, float | None] = {}
    for m in RATIO_METRICS:
        r, g = _number(real.get(m)), _number(generated.get(m))
        out[m] = g / r if r is not None and g is not None and r > 0 and math.isfinite(r) else None
    return out


def typical_factor(ratios: Iterable[Any]) -> float | None:
    """exp(√mean(log² ratio)): how many times too much or too little a clip typically moves, in
    either direction (1 = every clip right; 2 = typically off by a factor of two).

    The mean of ratios lets a clip at 0.5 and one at 2 average to 1.25, as if nearly right; the
    log treats halving and doubling alike and squaring stops them cancelling. Ratios of 0 (a face
    that does not move at all) have no log and are left out.
    """
    logs = [math.log(x) for x in (_number(r) for r in ratios) if x is not None and 0 < x < math.inf]
    return math.exp(math.sqrt(sum(v * v for v in logs) / len(logs))) if logs else None


def clip_group(name: str) -> str:
    """"GRID" for GRID-corpus clips (named ``…_grid_…``: short read sentences, studio, frontal), else
    "other": the two kinds of speech differ enough to be summarised apart as well as together."""
    return "GRID" if "grid" in str(name).lower().replace("-", "_").split("_") else "other"


def _ratio_stats(values: list[Any]) -> dict[str, float | int | None]:
    xs = [x for x in (_number(v) for v in values) if x is not None and math.isfinite(x)]
    return {
        "ratio_mean": float(np.mean(xs)) if xs else None,
        "ratio_min": float(np.min(xs)) if xs else None,
        "ratio_max": float(np.max(xs)) if xs else None,
        "typical_factor": typical_factor(xs),
        "clips": len(xs),
    }


def ratio_summary(clips: list[dict]) -> dict[str, dict[str, dict[str, float | int | None]]]:
    """Across clips, per ratio metric: the mean, min and max of the per-clip ratios and their
    typical factor, over all clips (``"all"``) and per group (see :func:`clip_group`).

    A mean of per-clip ratios, not a ratio of means: a long expressive clip must not hide that
    every short one is flat.
    """
    groups: dict[str, list[dict]] = {"all": list(clips)}
    for c in clips:
        groups.setdefault(clip_group(c.get("name", "")), []).append(c)
    return {
        group: {m: _ratio_stats([(c.get("ratios") or {}).get(m) for c in members]) for m in RATIO_METRICS}
        for group, members in groups.items()
    }


def _format(metric: str, value: Any) -> str:
    """One number the way a reader wants it: fixed decimals per metric, signed offsets."""
    x = _number(value)
    if x is None:
        return _MISSING
    if math.isinf(x):
        return "∞" if x > 0 else "−∞"
    decimals = _DECIMALS.get(metric, _DEFAULT_DECIMALS)
    if metric == "av_offset_frames":
        # a clip's lag is a whole number of frames; the mean over clips may not be
        text = f"{x:+.0f}" if float(x).is_integer() else f"{x:+.1f}"
        return "0" if text in ("+0", "-0") else text
    text = f"{x:.{decimals}f}"
    return text[1:] if text.startswith("-") and float(text) == 0 else text  # no "-0.00"


def _cell(metric: str, real: Mapping[str, Any], generated: Mapping[str, Any]) -> str:
    """``real → generated`` for a metric both clips have, one value for a generated-only one."""
    gen = _format(metric, generated.get(metric))
    if metric in GENERATED_ONLY:
        return gen
    ref = _format(metric, real.get(metric))
    if ref == _MISSING and gen == _MISSING:
        return _MISSING
    return f"{ref} {_ARROW} {gen}"


# ---------------------------------------------------------------------------------------------
# files


def _jsonable(obj: Any) -> Any:
    """A copy of ``obj`` that strict JSON can hold: NaN/±inf become null, numpy becomes Python.

    ``json.dump`` would otherwise write the bare tokens NaN and Infinity, which most JSON parsers
    (browsers, jq, other languages) reject.
    """
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return _jsonable(obj.item())
    if isinstance(obj, int):
        return int(obj)
    if isinstance(obj, float):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    return str(obj)  # an odd value must not lose an hour of measurements at the last step


def _write_atomically(final: Path, write: Callable[[Path], None]) -> None:
    """Run ``write(tmp)`` and move the result onto ``final``: readers see the old file or the new, never half."""
    final = check_output_path(final)
    tmp = create_partial_file(final, final.suffix)
    try:
        write(tmp)
        replace_output(tmp, final)
    except BaseException:
        remove_quietly(tmp)
        raise


def write_report(report: dict, out_dir: Path) -> None:
    """Write ``report.json`` (strict JSON, NaN → null) and ``report.md`` into ``out_dir``.

    ``report`` holds ``clips`` (``{"name", "real", "generated"}`` entries, optionally ``"ratios"``:
    generated / real per amplitude), ``mean``, ``ratio_summary``, ``skipped`` (``{"name",
    "reason"}``) and any other top-level keys, which are kept in the JSON and listed in the
    markdown. A missing ``mean`` is computed with :func:`mean_metrics`, a missing
    ``ratio_summary`` with :func:`ratio_summary` when the clips carry ratios. Both files appear
    atomically, so a crash mid-write leaves the previous report intact, never a truncated one.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    full = dict(report)
    full.setdefault("clips", [])
    full.setdefault("skipped", [])
    if full.get("mean") is None:
        full["mean"] = mean_metrics(list(full["clips"]))
    if full.get("ratio_summary") is None and any("ratios" in c for c in full["clips"]):
        full["ratio_summary"] = ratio_summary(list(full["clips"]))
    clean = _jsonable(full)
    text = json.dumps(clean, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    markdown = _markdown(clean, out_dir)
    _write_atomically(out_dir / "report.json", lambda p: p.write_text(text, encoding="utf-8"))
    _write_atomically(out_dir / "report.md", lambda p: p.write_text(markdown, encoding="utf-8"))


# ---------------------------------------------------------------------------------------------
# markdown

_PROTOCOL = (
    "Self-reenactment: for every real clip, the first frame with a face is used as the photo and "
    "the clip's own audio as the voice, and the video is generated at the clip's frame rate. The "
    "real and the generated clip are then measured by the same code (dlib's 68 face landmarks, "
    "the same audio features), so each pair of numbers is directly comparable. Each cell reads "
    f"`real {_ARROW} generated`; metrics that exist only for the generated video show one value; "
    f"`{_MISSING}` marks a value that could not be measured."
)


def _md_text(value: Any) -> str:
    """Text safe inside a markdown table cell or list item: one line, pipes escaped."""
    return " ".join(str(value).split()).replace("|", "\\|")


def _summary_lines(report: Mapping[str, Any]) -> list[str]:
    """The extra top-level keys (version, number of videos, seconds, ...) as short bullets."""
    lines = []
    for key, value in report.items():
        if key in ("clips", "mean", "skipped", "ratio_summary"):
            continue
        if isinstance(value, float):
            shown = f"{value:.1f}"
        elif isinstance(value, (list, tuple)):
            if len(value) <= 10 and all(not isinstance(v, (dict, list)) for v in value):
                shown = ", ".join(_md_text(v) for v in value) or "none"
            else:
                shown = f"{len(value)} entries (see report.json)"
        elif isinstance(value, dict):
            shown = "see report.json"
        else:
            shown = _md_text(value)
        lines.append(f"- **{_md_text(key)}**: {shown}")
    return lines


def _table_lines(clips: list[dict], mean: Mapping[str, Any], metrics: list[str]) -> list[str]:
    """One row per clip and a mean row, a ``real → generated`` cell per metric."""
    lines = [
        "| clip | " + " | ".join(metrics) + " |",
        "|:--|" + "--:|" * len(metrics),
    ]
    rows = [(_md_text(c.get("name", "?")), c) for c in clips] + [("**mean**", mean)]
    for label, entry in rows:
        real, gen = entry.get("real") or {}, entry.get("generated") or {}
        lines.append(f"| {label} | " + " | ".join(_cell(m, real, gen) for m in metrics) + " |")
    return lines


_RATIO_NOTE = (
    "Generated / real, per clip: under 1 the generated face moves less than the real person did. "
    "Across clips: the mean and the minimum of the per-clip ratios, and the typical factor "
    "exp(√mean(log² ratio)), how many times too much or too little a clip typically moves "
    "(1 = right). GRID clips (short read sentences, studio) are marked and summarised apart."
)


def _ratio_lines(clips: list[dict], summary: Mapping[str, Any]) -> list[str]:
    """The ratio table: clips (other first, then GRID), then mean, min and typical factor rows."""
    metrics = list(RATIO_METRICS)
    lines = ["| clip | group | " + " | ".join(metrics) + " |", "|:--|:--|" + "--:|" * len(metrics)]

    def ratio(x: Any) -> str:
        v = _number(x)
        return _MISSING if v is None or not math.isfinite(v) else f"{v:.2f}"

    ordered = sorted(clips, key=lambda c: clip_group(c.get("name", "")) == "GRID")  # stable
    for c in ordered:
        group, ratios = clip_group(c.get("name", "")), c.get("ratios") or {}
        lines.append(f"| {_md_text(c.get('name', '?'))} | {group} | "
                     + " | ".join(ratio(ratios.get(m)) for m in metrics) + " |")
    rows = [("mean", "ratio_mean", ""), ("min", "ratio_min", ""), ("typical factor", "typical_factor", "×")]
    for group in ("all", "other", "GRID"):
        stats = summary.get(group)
        if not stats or (group != "all" and len(summary) <= 2):  # one group only: "all" says it
            continue
        for label, key, prefix in rows:
            if group != "all" and key == "ratio_min":
                continue
            cells = []
            for m in metrics:
                text = ratio((stats.get(m) or {}).get(key))
                cells.append(text if text == _MISSING else prefix + text)
            lines.append(f"| **{label}** | {group} | " + " | ".join(cells) + " |")
    return lines


def _markdown(report: Mapping[str, Any], out_dir: Path) -> str:
    clips = list(report.get("clips") or [])
    mean = report.get("mean") or {}
    skipped = list(report.get("skipped") or [])
    out = ["# facetalk evaluation: self-reenactment", "", _PROTOCOL, ""]
    summary = _summary_lines(report)
    if summary:
        out += [*summary, ""]

    present = _ordered_metrics(k for entry in [*clips, mean] for side in _SIDES for k in (entry.get(side) or {}))
    amplitude = [m for m in present if m in AMPLITUDE_METRICS]
    out += ["## Results", ""]
    if clips:
        out += _table_lines(clips, mean, _ordered_metrics([*METRICS, *(m for m in present if m not in amplitude)]))
    else:
        out.append("No clip was measured.")
    out.append("")

    if clips and amplitude:
        note = f"Each cell reads `real {_ARROW} generated`; the ratios are in the next table."
        out += ["## Amplitude and dynamics", "", note, ""]
        out += [*_table_lines(clips, mean, amplitude), ""]
    summary = report.get("ratio_summary") or {}
    if clips and summary:
        out += ["## Generated / real", "", _RATIO_NOTE, "", *_ratio_lines(clips, summary), ""]

    out += ["## Skipped clips", ""]
    if skipped:
        for s in skipped:
            out.append(f"- {_md_text(s.get('name', '?'))}: {_md_text(s.get('reason', 'no reason given'))}")
    else:
        out.append("none")
    out.append("")

    out += ["## Metrics", ""]
    extra = [m for m in _ordered_metrics(k for c in clips for s in _SIDES for k in (c.get(s) or {}))
             if m not in ALL_METRICS]
    for m in [*ALL_METRICS, *extra]:
        unit = f" ({UNITS[m]})" if m in UNITS else ""
        out.append(f"- **{m}**{unit}: {DESCRIPTIONS.get(m, 'no description.')}")
    out.append("")

    figures = []
    for c in clips:
        name = str(c.get("name", ""))
        if not name:
            continue
        images = [(f"{name} {kind}", p) for kind, p in (("plot", plot_path(out_dir, name)),
                                                        ("frames", sheet_path(out_dir, name)))
                  if p.is_file()]
        if images:
            figures += [f"### {_md_text(name)}", ""]
            for alt, p in images:  # a blank line apart, so each image gets its own paragraph
                figures += [f"![{_md_text(alt)}]({quote(p.name)})", ""]
    if figures:
        out += ["## Clips", "", *figures]
    return "\n".join(out).rstrip("\n") + "\n"


# ---------------------------------------------------------------------------------------------
# pictures


def _xy(times: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Times and values cut to a common length, as floats, so a one-frame mismatch never crashes a plot."""
    t = np.asarray(times, np.float64).reshape(-1)
    v = np.asarray(values, np.float64)
    n = min(len(t), len(v))
    return t[:n], v[:n]


def _blink_points(series: ClipSeries) -> tuple[np.ndarray, np.ndarray]:
    """Time and eye aspect ratio at each blink that falls inside the clip and has a value."""
    t, ear = _xy(series.times, series.ear)
    idx = np.asarray(series.blinks).reshape(-1)
    idx = idx[np.isfinite(idx)].astype(np.int64) if idx.size else np.zeros(0, np.int64)
    idx = idx[(idx >= 0) & (idx < len(t))]
    idx = idx[np.isfinite(ear[idx])]
    return t[idx], ear[idx]


def plot_clip(path: Path, real: ClipSeries, generated: ClipSeries) -> None:
    """Draw mouth, head pose, eyes, brows and mouth corners of the real and the generated clip over
    time into one PNG.

    The summary numbers say *how much* the clips differ; this picture says *when*: a lip-sync
    lag, a head that drifts, blinks at the wrong moment, brows that never rise. About 1400×1100 px,
    written atomically. NaN frames (no face) show as gaps.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    path = Path(path)
    fig = Figure(figsize=_PLOT_SIZE_IN, dpi=_PLOT_DPI)
    FigureCanvasAgg(fig)
    ax_mouth, ax_pose, ax_eye, ax_brow = fig.subplots(4, 1, sharex=True)

    # (a) mouth opening, with the speech envelope behind it
    env = ax_mouth.twinx()
    t, e = _xy(real.times, real.envelope)
    env_line = env.plot(t, e, color="0.55", alpha=0.45, linewidth=0.8, label="real speech envelope (dB)")
    env.set_ylabel("speech loudness, dB", color="0.45")
    env.tick_params(axis="y", colors="0.45")
    ax_mouth.set_zorder(env.get_zorder() + 1)  # mouth curves above the envelope
    ax_mouth.patch.set_visible(False)
    handles = []
    for series, colour, label in ((real, _REAL_COLOUR, "real"), (generated, _GEN_COLOUR, "generated")):
        handles += ax_mouth.plot(*_xy(series.times, series.mouth), color=colour, linewidth=1.2, label=label)
    ax_mouth.legend(handles=handles + env_line, ncol=3, **_LEGEND_ABOVE)
    ax_mouth.set_ylabel("mouth opening\n(lip gap / face height)")
    ax_mouth.set_title("Mouth opening", loc="left", fontsize=11)

    # (b) head pose
    for k, (angle, colour) in enumerate(zip(("yaw", "pitch", "roll"), _ANGLE_COLOURS)):
        for series, style in ((real, "-"), (generated, "--")):
            angles = np.asarray(series.angles, np.float64).reshape(-1, 3)
            ax_pose.plot(*_xy(series.times, angles[:, k]), color=colour, linestyle=style, linewidth=1.1)
    pose_handles = [Line2D([], [], color=c, label=a) for a, c in zip(("yaw", "pitch", "roll"), _ANGLE_COLOURS)]
    pose_handles += [Line2D([], [], color="0.2", linestyle="-", label="real"),
                     Line2D([], [], color="0.2", linestyle="--", label="generated")]
    ax_pose.legend(handles=pose_handles, ncol=5, **_LEGEND_ABOVE)
    ax_pose.set_ylabel("head angle, degrees")
    ax_pose.set_title("Head pose", loc="left", fontsize=11)

    # (c) eyes, with the detected blinks
    for series, colour, label in ((real, _REAL_COLOUR, "real"), (generated, _GEN_COLOUR, "generated")):
        ax_eye.plot(*_xy(series.times, series.ear), color=colour, linewidth=1.1, label=label)
        bt, be = _blink_points(series)
        ax_eye.plot(bt, be, linestyle="none", marker="v", markersize=8, color=colour,
                    markeredgecolor="black", markeredgewidth=0.6,
                    label=f"{label} blinks ({len(np.asarray(series.blinks).reshape(-1))})")
    ax_eye.legend(ncol=4, **_LEGEND_ABOVE)
    ax_eye.set_ylabel("eye aspect ratio")
    ax_eye.set_title("Eyes", loc="left", fontsize=11)

    # (d) brows and mouth corners, each about its clip's median so real and generated overlay
    _plot_brow_smile(ax_brow, real, generated)
    ax_brow.set_xlabel("time, s")

    for ax in (ax_mouth, ax_pose, ax_eye, ax_brow):
        ax.grid(True, alpha=0.3)
    title = real.name if generated.name in ("", real.name) else f"{real.name} vs {generated.name}"
    fig.suptitle(
        f"{title}   (real: {len(real)} frames at {real.fps:.2f} fps; "
        f"generated: {len(generated)} frames at {generated.fps:.2f} fps)",
        fontsize=13,
    )
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    _write_atomically(path, lambda p: fig.savefig(p, format="png", dpi=_PLOT_DPI))


def _centred_percent(values: np.ndarray) -> np.ndarray:
    """100 × (values − their median): a trace about its clip's resting level, in %."""
    v = np.asarray(values, np.float64)
    return 100.0 * (v - np.nanmedian(v)) if np.isfinite(v).any() else v


def _plot_brow_smile(ax: Any, real: ClipSeries, generated: ClipSeries) -> None:
    """Brow height and mouth-corner lift (roll, landmark failures and pitch removed as for brow_sd and
    smile_sd; % IOD, about each clip's median), with their spreads in the legend: a face whose brows
    never rise is a flat brown dashed line."""
    from matplotlib.lines import Line2D

    from facetalk.eval import signals

    spreads: dict[tuple[str, str], float] = {}
    for series, style, side in ((real, "-", "real"), (generated, "--", "generated")):
        lm = np.asarray(series.landmarks, np.float64).reshape(-1, 68, 2)
        pitch = np.asarray(series.angles, np.float64).reshape(-1, 3)[:, 1]
        for key, fn, colour in (("brows", signals.brow_height, _BROW_COLOUR),
                                ("smile", signals.corner_lift, _SMILE_COLOUR)):
            with np.errstate(invalid="ignore", divide="ignore"):
                raw = fn(lm) if len(lm) else np.zeros(0)
            # the trace the metric measures: landmark failures and the nod's share taken out
            trace = signals.without_pitch(signals.reject_outliers(raw), pitch) if len(pitch) == len(raw) else raw
            spreads[key, side] = 100.0 * signals.spread(trace)
            ax.plot(*_xy(series.times, _centred_percent(trace)), color=colour, linestyle=style, linewidth=1.1)

    def sd(key: str, side: str) -> str:
        v = spreads[key, side]
        return f"{v:.2f}" if math.isfinite(v) else _MISSING

    handles = [Line2D([], [], color=_BROW_COLOUR, label=f"brow height (sd {sd('brows', 'real')} {_ARROW} "
                      f"{sd('brows', 'generated')})"),
               Line2D([], [], color=_SMILE_COLOUR, label=f"corner lift (sd {sd('smile', 'real')} {_ARROW} "
                      f"{sd('smile', 'generated')})"),
               Line2D([], [], color="0.2", linestyle="-", label="real"),
               Line2D([], [], color="0.2", linestyle="--", label="generated")]
    ax.legend(handles=handles, ncol=4, **_LEGEND_ABOVE)
    ax.set_ylabel("change from median,\n% inter-ocular")
    ax.set_title("Brows and mouth corners (smile)", loc="left", fontsize=11)


def _as_rgb(frame: np.ndarray) -> np.ndarray:
    """An H×W×3 uint8 view of a frame that may be gray, RGBA or float in [0, 255]."""
    a = np.asarray(frame)
    if a.ndim == 2:
        a = np.repeat(a[:, :, None], 3, axis=2)
    elif a.ndim == 3 and a.shape[2] == 4:
        a = a[:, :, :3]
    elif a.ndim == 3 and a.shape[2] == 1:
        a = np.repeat(a, 3, axis=2)
    if a.ndim != 3 or a.shape[2] != 3 or a.shape[0] == 0 or a.shape[1] == 0:
        raise ValueError(f"contact_sheet wants H×W×3 frames, got shape {a.shape}")
    if a.dtype != np.uint8:
        a = np.clip(np.nan_to_num(a.astype(np.float64)), 0, 255).round().astype(np.uint8)
    return np.ascontiguousarray(a)


def _fit(frame: np.ndarray, cell_w: int, cell_h: int) -> np.ndarray:
    """The frame scaled to fit the cell with its aspect kept, centred on white."""
    import cv2

    h, w = frame.shape[:2]
    scale = min(cell_w / w, cell_h / h)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    small = cv2.resize(frame, (nw, nh), interpolation=interp)
    cell = np.full((cell_h, cell_w, 3), 255, np.uint8)
    y, x = (cell_h - nh) // 2, (cell_w - nw) // 2
    cell[y:y + nh, x:x + nw] = small
    return cell


def contact_sheet(real_frames: list[np.ndarray], generated_frames: list[np.ndarray], width: int = 192,
                  labels: tuple[str, str] = ("real", "generated")) -> np.ndarray:
    """Real frames in the top row, generated frames below, for a side-by-side look at the same moments.

    Every cell is ``width`` px wide; its height follows the aspect of the first real frame (the
    first generated one when there is no real frame), and frames of another aspect are fitted
    inside with white bars, so the two rows line up column by column. Cells are separated by a
    4 px white gap and a strip at the left names the rows (`labels`). Returns an RGB uint8 array; write it
    with ``facetalk.media.image.write_image``.
    """
    import cv2

    real = [_as_rgb(f) for f in real_frames]
    gen = [_as_rgb(f) for f in generated_frames]
    if not real and not gen:
        raise ValueError("contact_sheet needs at least one frame")
    if width < 1:
        raise ValueError(f"contact_sheet width must be positive, got {width}")
    first = (real or gen)[0]
    cell_w = int(width)
    cell_h = max(1, round(cell_w * first.shape[0] / first.shape[1]))
    cols = max(len(real), len(gen))

    font, thickness = cv2.FONT_HERSHEY_SIMPLEX, 1
    text_w = max(cv2.getTextSize(s, font, _SHEET_FONT_SCALE, thickness)[0][0] for s in labels)
    label_w = text_w + 2 * _SHEET_GAP + 4

    gap = _SHEET_GAP
    sheet_w = label_w + cols * cell_w + (cols + 1) * gap
    sheet_h = 2 * cell_h + 3 * gap
    sheet = np.full((sheet_h, sheet_w, 3), 255, np.uint8)
    for row, (frames, label) in enumerate(zip((real, gen), labels)):
        y0 = gap + row * (cell_h + gap)
        (_, th), _ = cv2.getTextSize(label, font, _SHEET_FONT_SCALE, thickness)
        cv2.putText(sheet, label, (gap + 2, y0 + (cell_h + th) // 2), font, _SHEET_FONT_SCALE,
                    (0, 0, 0), thickness, cv2.LINE_AA)
        for col, frame in enumerate(frames):
            x0 = label_w + gap + col * (cell_w + gap)
            sheet[y0:y0 + cell_h, x0:x0 + cell_w] = _fit(frame, cell_w, cell_h)
    return sheet
