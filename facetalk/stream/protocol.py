"""The live protocol's wire formats: frame messages, control updates, upload sniffing.

Kept apart from the server so the page, the tests and any other client can rely on one definition:

- client -> server, binary: 16 kHz mono PCM, int16 little-endian, any number of samples.
- client -> server, text: `{"controls": {...}}` (a partial update of `Controls`' fields),
  `{"type": "interrupt"}` (drop the sound sent but not yet shown: Session.interrupt) or
  `{"end": true}` (flush the last frames, finish the recording, close).
- server -> client, binary: one frame = FRAME_HEADER (uint32 index, float64 time in s, both
  little-endian) followed by a JPEG of the frame.
- server -> client, text: `{"fps", "size", "sample_rate"}` once at the start, `{"controls"}` after
  each accepted update, `{"interrupted": {"at": s}}` once the sound from session time s on was
  dropped, `{"error"}` on a bad message or failure, `{"end": true, ...}` last. (The WebRTC path,
  stream.webrtc, sends and takes the same text messages on its data channel.)
"""

from __future__ import annotations

import dataclasses
import json
import math
import struct
from typing import Any

import cv2
import numpy as np

from facetalk.media.image import photo_format
from facetalk.motion.controls import Controls

FRAME_HEADER = struct.Struct("<Id")  # frame index, time (s from the stream's start)
JPEG_QUALITY = 80  # ~2 ms per 512² frame, ~35 KB; artefacts invisible at video speed

_CONTROL_FIELDS = {f.name: f.type for f in dataclasses.fields(Controls)}

# Every JSON text the server reads is a small controls object or message: `{"controls": {"gaze":
# [10, -5]}}` nests 3 deep and takes ~200 characters. Anything far beyond is refused before it is
# parsed, so a hostile text (a million "[") cannot exhaust the parser's recursion or the memory.
MAX_JSON_CHARS = 4096
MAX_JSON_DEPTH = 8
ECHO_CHARS = 40  # a client's own input is quoted back in an error message at most this long


class ProtocolError(ValueError):
    """A client message the server cannot use; its text is sent back as one line."""


def encode_frame(index: int, time: float, rgb: np.ndarray, quality: int = JPEG_QUALITY) -> bytes:
    """One frame message: header + JPEG of an RGB uint8 image."""
    return FRAME_HEADER.pack(index, time) + jpeg(rgb, quality)


def jpeg(rgb: np.ndarray, quality: int = JPEG_QUALITY) -> bytes:
    """JPEG bytes of an RGB uint8 image."""
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError(f"JPEG encoding failed for an image of shape {rgb.shape}")
    return data.tobytes()


def decode_frame(message: bytes) -> tuple[int, float, np.ndarray]:
    """(index, time, RGB image) of a frame message; the inverse of `encode_frame`."""
    if len(message) <= FRAME_HEADER.size:
        raise ProtocolError(f"a frame message holds a {FRAME_HEADER.size}-byte header and a JPEG, "
                            f"got {len(message)} bytes")
    index, time = FRAME_HEADER.unpack_from(message)
    bgr = cv2.imdecode(np.frombuffer(message, np.uint8, offset=FRAME_HEADER.size), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ProtocolError(f"frame {index} does not hold a readable JPEG")
    return index, time, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def loads_bounded(text: str, what: str) -> Any:
    """``json.loads(text)`` for a short, shallow JSON text; a longer or deeper one raises
    ProtocolError naming ``what`` ("controls", "text messages"). Invalid JSON raises ValueError."""
    if len(text) > MAX_JSON_CHARS:
        raise ProtocolError(f"{what} must be at most {MAX_JSON_CHARS} characters of JSON, got {len(text)}")
    if _too_deep(text, MAX_JSON_DEPTH):
        raise ProtocolError(f"{what} must nest at most {MAX_JSON_DEPTH} levels of [ ] and {{ }}, got more")
    try:
        return json.loads(text)
    except RecursionError:  # cannot happen within the limits above; kept as a backstop
        raise ProtocolError(f"{what} nests too deeply") from None


def _too_deep(text: str, limit: int) -> bool:
    """Whether the brackets outside JSON strings nest deeper than ``limit`` (a lenient scan: it only
    has to keep deep texts away from the parser, which judges everything else)."""
    depth = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > limit:
                return True
        elif ch in "]}":
            depth -= 1
    return False


def parse_message(text: str) -> dict[str, Any]:
    """A client's text message as a JSON object, or a ProtocolError saying what was wrong."""
    try:
        message = loads_bounded(text, "text messages")
    except ProtocolError:
        raise
    except ValueError:
        raise ProtocolError(f"text messages must be JSON objects, got {clip(text)}") from None
    if isinstance(message, dict) and message.get("type") == "interrupt":
        return message
    if not isinstance(message, dict) or not ({"controls", "end"} & message.keys()):
        raise ProtocolError(f'send {{"controls": {{...}}}}, {{"type": "interrupt"}} or {{"end": true}}, got {clip(text)}')
    return message


def updated_controls(current: Controls, update: object) -> Controls:
    """`current` with the fields named in `update` (a JSON object) replaced, all values checked.

    Field names are Controls' own (seed, motion_intensity, blink, gaze, distance, emotion,
    pose_lock); gaze is [yaw, pitch] in degrees. Raises ProtocolError with a one-line reason.
    """
    if not isinstance(update, dict):
        raise ProtocolError(f"controls must be a JSON object of fields, got {_json_clip(update)}")
    unknown = sorted(set(update) - set(_CONTROL_FIELDS))
    if unknown:
        raise ProtocolError(f"unknown control {clip(unknown[0])}; known: {', '.join(_CONTROL_FIELDS)}")
    values = {name: _checked_value(name, value) for name, value in update.items()}
    try:
        return dataclasses.replace(current, **values)
    except ValueError as exc:
        raise ProtocolError(str(exc)) from None


def controls_json(controls: Controls) -> dict[str, Any]:
    """Controls as the JSON object clients send (gaze as a list)."""
    out = dataclasses.asdict(controls)
    out["gaze"] = list(controls.gaze)
    return out


def image_kind(head: bytes) -> str | None:
    """An upload's photo format from its first 12 bytes (never its name or declared type): the
    short name of one of media.image.PHOTO_FORMATS, the list the CLI reads too; else None."""
    return photo_format(head)


def clip(text: str, limit: int = ECHO_CHARS, quote: bool = True) -> str:
    """A client's input as it is quoted back in an error: one line, at most ``limit`` characters
    of it (then "…" and its full length), single-quoted unless ``quote`` is False (JSON texts,
    whose strings carry their own quotes)."""
    flat = " ".join(str(text).split())
    q = "'" if quote else ""
    if len(flat) <= limit:
        return f"{q}{flat}{q}"
    return f"{q}{flat[: limit - 1]}…{q} ({len(text)} characters)"


def _json_clip(value: object) -> str:
    return clip(json.dumps(value), quote=False)


def _checked_value(name: str, value: object) -> object:
    """JSON value -> the Python value Controls expects, with JSON's type confusions refused."""
    if name in ("blink", "pose_lock"):
        if not isinstance(value, bool):
            raise ProtocolError(f"{name} must be true or false, got {_json_clip(value)}")
        return value
    if name == "emotion":
        if not isinstance(value, str) or len(value) > ECHO_CHARS:
            raise ProtocolError(f'emotion must be a short string such as "happy:0.8", got {_json_clip(value)}')
        return value
    if name == "gaze":
        if not (isinstance(value, list) and len(value) == 2 and all(_is_number(v) for v in value)):
            raise ProtocolError(f"gaze must be [yaw, pitch] in degrees, got {_json_clip(value)}")
        return (float(value[0]), float(value[1]))
    if name == "seed":
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 2**32:
            raise ProtocolError(f"seed must be an integer in 0..2^32-1, got {_json_clip(value)}")
        return value
    if not _is_number(value):
        raise ProtocolError(f"{name} must be a number, got {_json_clip(value)}")
    return float(value)  # type: ignore[arg-type]


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)

