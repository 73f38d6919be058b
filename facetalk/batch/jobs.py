"""Jobs files: one job a row (CSV with a header, or JSON Lines), read and validated up front.

A row names an `image`, an `audio` clip, optionally an `output` file name and the `text` the voice
says (as `generate --text`: every lip shape placed by the words), and any of `generate`'s options
under its own name (`size`, `fps`, `seed`, `full_frame`, `face`, `motion_intensity`,
`no_blink` or `blink`, `pose_lock`, `gaze`, `distance`, `emotion`, `no_watermark` or `watermark`,
`label`; dashes or underscores). Each row is parsed by `generate`'s own option parser and
checked by the same code (`Controls`, the fps and size checks), so a bad row gets the message
`facetalk generate` would give, prefixed with its line number. Relative paths in a jobs file are
relative to the file's folder.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from facetalk.errors import FacetalkError
from facetalk.motion.controls import Controls

IMAGE_HINT = "pass a JPEG, PNG or WebP photo"  # as facetalk.media.image says it
AUDIO_HINT = "pass a WAV, MP3, M4A, FLAC or OGG clip with speech"  # as facetalk.media.audio says it
MAX_SIZE = 2048  # facetalk.face.rig.MAX_SIZE (not imported: that would load the face stage here)
TRUE = {"1", "true", "yes", "y", "on", "x"}
FALSE = {"0", "false", "no", "n", "off", ""}
FILES = ("image", "audio", "output", "text")  # the row's own cells, not generate's render options
# columns that are the negation of a generate flag
POSITIVE = {"blink": "no_blink", "watermark": "no_watermark"}


@dataclass(frozen=True)
class Job:
    """One video to make. Paths are absolute; `line` is the row's line in the jobs file (1-based;
    for jobs given as Python rows, their position, from 1)."""

    line: int
    image: str
    audio: str
    output: str
    size: int = 512
    fps: float = 25.0
    controls: Controls = field(default_factory=Controls)
    full_frame: bool = False
    face: int | None = None
    watermark: bool = True
    label: bool = False
    text: str | None = None  # the words the voice says (generate --text)


@dataclass(frozen=True)
class BadRow:
    line: int
    message: str  # one line, without the line number
    row: Mapping[str, object]


class BadJobs(FacetalkError):
    """Rows that failed validation (all of them, so they can be fixed in one go)."""

    def __init__(self, source: str, bad: list[BadRow]) -> None:
        self.source = source
        self.bad = bad
        super().__init__(f"{len(bad)} bad row{'s' if len(bad) != 1 else ''} in {source}, nothing rendered; "
                         "fix them, or pass --skip-bad to render the other rows")

    @property
    def problems(self) -> list[str]:
        return [f"{self.source} line {b.line}: {b.message}" for b in self.bad]


class _RaisingParser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise FacetalkError(message)


def _options_parser() -> tuple[argparse.ArgumentParser, dict[str, argparse.Action]]:
    """`generate`'s own render options (cli._add_render_options), raising instead of exiting."""
    from facetalk.cli import _add_render_options

    parser = _RaisingParser(prog="facetalk generate", add_help=False)
    _add_render_options(parser)
    actions = {a.dest: a for a in parser._actions if a.dest not in ("quiet", "help")}
    return parser, actions


def read_rows(path: str | os.PathLike[str]) -> list[tuple[int, dict[str, object]]]:
    """(line number, row) for every non-empty row of a CSV or JSON Lines jobs file."""
    p = Path(path)
    if not p.is_file():
        raise FacetalkError(f"jobs file '{p}' does not exist; pass a CSV or JSON Lines file, one job a row")
    try:
        text = p.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise FacetalkError(f"cannot read jobs file '{p}': {exc}; pass a UTF-8 CSV or JSON Lines file") from None
    suffix = p.suffix.lower()
    jsonl = suffix in (".jsonl", ".ndjson", ".json") or (suffix != ".csv" and text.lstrip().startswith("{"))
    rows = _jsonl_rows(p, text) if jsonl else _csv_rows(p, text)
    if not rows:
        raise FacetalkError(f"jobs file '{p}' has no jobs; write one job a row (image, audio, ...)")
    return rows


def _jsonl_rows(p: Path, text: str) -> list[tuple[int, dict[str, object]]]:
    rows = []
    for n, raw in enumerate(text.splitlines(), 1):
        if not raw.strip():
            continue
        try:
            row = json.loads(raw)
        except json.JSONDecodeError as exc:
            row = {"__error__": f"not a JSON object ({exc.msg} at column {exc.colno})"}
        if not isinstance(row, dict):
            row = {"__error__": f"not a JSON object but {type(row).__name__}"}
        rows.append((n, row))
    return rows


def _csv_rows(p: Path, text: str) -> list[tuple[int, dict[str, object]]]:
    reader = csv.reader(text.splitlines(keepends=True))
    header: list[str] | None = None
    header_line = 1
    rows = []
    start = 1
    for cells in reader:
        line, start = start, reader.line_num + 1  # a quoted cell may span lines: report the first
        if not any(c.strip() for c in cells) or (header is None and cells[0].lstrip().startswith("#")):
            continue
        if header is None:
            header, header_line = [c.strip() for c in cells], line
            continue
        if len(cells) > len(header):
            rows.append((line, {"__error__": f"{len(cells)} cells but the header has {len(header)} columns"}))
            continue
        rows.append((line, {k: v for k, v in zip(header, cells) if k}))
    if header is None:
        raise FacetalkError(f"jobs file '{p}' is empty; its first line names the columns (image,audio,...)")
    if not any(h.strip().lower() == "image" for h in header):
        raise FacetalkError(f"jobs file '{p}' line {header_line}: no 'image' column in the header "
                            f"{','.join(header)!r}; the first line names the columns (image,audio,output,...)")
    known = columns()
    for h in header:
        if h and h.lower().replace("-", "_") not in known:
            raise FacetalkError(f"jobs file '{p}' line {header_line}: {_unknown(h)}")
    return rows


def columns() -> list[str]:
    """Every column a jobs file may have (lower case, underscores)."""
    return [*FILES, *sorted(_options_parser()[1]), *sorted(POSITIVE)]


def _unknown(column: str) -> str:
    return f"unknown column {column!r}; the columns are {', '.join(columns())}"


def _flag(action: argparse.Action) -> str:
    return action.option_strings[-1]


def _as_bool(value: object, column: str) -> bool:
    if isinstance(value, bool):
        return value
    if value is None:
        return False
    text = str(value).strip().lower()
    if text in TRUE:
        return True
    if text in FALSE:
        return False
    raise FacetalkError(f"{column} takes true or false (or 1/0, yes/no), got {value!r}")


def _argv(row: Mapping[str, object], actions: dict[str, argparse.Action]) -> tuple[list[str], dict[str, str]]:
    """The row's options as generate's command-line arguments, and its image/audio/output/text cells."""
    argv: list[str] = []
    files: dict[str, str] = {}
    for key, value in row.items():
        column = str(key).strip().lower().replace("-", "_")
        if column in FILES:
            files[column] = "" if value is None else str(value).strip()
            continue
        negated = column in POSITIVE
        dest = POSITIVE.get(column, column)
        action = actions.get(dest)
        if action is None:
            raise FacetalkError(_unknown(str(key)))
        if action.nargs == 0:  # a flag: true/false
            on = _as_bool(value, column)
            if on != negated:
                argv.append(_flag(action))
            continue
        if value is None or (isinstance(value, str) and not value.strip()):
            continue  # empty cell: generate's default
        if isinstance(value, bool):
            raise FacetalkError(f"argument {_flag(action)}: expected a value, got {value!r}")
        if isinstance(value, (list, tuple)):  # JSON: "gaze": [10, -5]
            value = ",".join(str(v) for v in value)
        elif isinstance(value, float) and action.type is int and value.is_integer():
            value = int(value)
        argv.append(f"{_flag(action)}={str(value).strip()}")
    return argv, files


def _check_size(size: int) -> None:
    if size < 64 or size > MAX_SIZE or size % 2:  # build_rig's check, made before any photo is read
        raise FacetalkError(f"crop size must be an even number of pixels within 64..{MAX_SIZE}, got {size}")


def parse_rows(rows: Iterable[tuple[int, Mapping[str, object]]], out_dir: str | os.PathLike[str],
               base: str | os.PathLike[str] | None = None) -> tuple[list[Job], list[BadRow]]:
    """Validate rows into Jobs (outputs under `out_dir`, relative inputs under `base`, default the
    current folder); the bad rows come back with their one-line reasons."""
    from facetalk.audio.transcript import words_of
    from facetalk.cli import _controls
    from facetalk.media._files import check_input_file
    from facetalk.pipeline import check_fps

    parser, actions = _options_parser()
    out = Path(out_dir).absolute()
    root = Path(base).absolute() if base is not None else Path.cwd()
    jobs: list[Job] = []
    bad: list[BadRow] = []
    taken: dict[str, int] = {}  # output path -> line that writes it
    named: list[tuple[int, Job, bool]] = []  # jobs whose output was not given: named afterwards
    for line, row in rows:
        try:
            if "__error__" in row:
                raise FacetalkError(str(row["__error__"]))
            argv, files = _argv(row, actions)
            args = parser.parse_args(argv)
            for column, what in (("image", "a portrait photo"), ("audio", "a voice clip")):
                if not files.get(column):
                    raise FacetalkError(f"no {column}; every row needs an {column} column naming {what}")
            image = check_input_file(root / files["image"], "image", IMAGE_HINT)
            audio = check_input_file(root / files["audio"], "audio", AUDIO_HINT)
            check_fps(args.fps)
            _check_size(args.size)
            if args.face is not None and args.face < 0:
                raise FacetalkError(f"--face takes 0 (the largest face) or more, got {args.face}")
            controls = _controls(args)
            text = files.get("text") or None
            if text is not None:
                words_of(text)  # a word the dictionary lacks: the message generate --text gives
            output = files.get("output") or ""
            if output:
                name = Path(output)
                if name.suffix.lower() != ".mp4":
                    if name.suffix:
                        raise FacetalkError(f"output {output!r} must be an .mp4 file name")
                    name = name.with_suffix(".mp4")
                target = str((out / name).resolve()) if not name.is_absolute() else str(name)
            else:
                target = ""
            job = Job(line, str(image.absolute()), str(audio.absolute()), target, args.size, args.fps, controls,
                      args.full_frame, args.face, not args.no_watermark, args.label, text)
            if target:
                if target in taken:
                    raise FacetalkError(f"output {output!r} is also written by line {taken[target]}")
                taken[target] = line
            named.append((line, job, bool(target)))
        except FacetalkError as exc:
            bad.append(BadRow(line, str(exc), dict(row)))
    for line, job, given in named:
        if not given:
            stem = f"{Path(job.audio).stem}_{Path(job.image).stem}"
            target = str(out / f"{stem}.mp4")
            if target in taken:  # the same pair twice, or a name a row asked for
                target = str(out / f"{stem}-line{line}.mp4")
            if target in taken:
                bad.append(BadRow(line, f"its default output {Path(target).name!r} is also written by line "
                                        f"{taken[target]}; give it an output name", {}))
                continue
            taken[target] = line
            job = replace(job, output=target)
        jobs.append(job)
    jobs.sort(key=lambda j: j.line)
    bad.sort(key=lambda b: b.line)
    return jobs, bad
