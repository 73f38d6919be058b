"""The composers: each job reads as its pipeline (see DESIGN.md's data flow).

photo -> FaceRig;  audio -> Features -> MotionTrack;  (FaceRig, MotionTrack) -> frames -> marks -> MP4.

Every file written here goes through `_write`, which marks every frame (safety.Marks: the invisible
watermark unless turned off, the visible label if asked) and tags the file with its provenance.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

import numpy as np

from facetalk.audio.features import Features, audio_features
from facetalk.audio.phones import recognise_phones
from facetalk.audio.transcript import align_phones, words_of
from facetalk.errors import FacetalkError
from facetalk.face.detect import beyond_photo
from facetalk.face.rig import FaceRig, build_rig
from facetalk.face.track import track_video
from facetalk.media._files import check_output_path
from facetalk.media.audio import SAMPLE_RATE, iter_audio, probe_audio, read_audio
from facetalk.media.image import read_image
from facetalk.media.video import VideoWriter, probe_video
from facetalk.motion.controls import Controls, ControlTrack
from facetalk.motion.encode import ALL_PARTS, MotionEncoder, take_parts, with_controls
from facetalk.motion.generate import generate
from facetalk.motion.mouth import silent_frames
from facetalk.motion.track import MotionTrack
from facetalk.render.paste import FULL_FRAME_MAX_SIDE, Paster
from facetalk.render.renderer import Renderer
from facetalk import __version__
from facetalk.safety.marks import Marks
from facetalk.safety.payload import Payload

Progress = Callable[[int, int], None]  # (frames done, frames total)
# share of the voiced frames an alignment to --text must cover with words (GRID's sentences: 0.93-1.00;
# the demo voice's script 0.94; its first five words alone 0.16)
ALIGNED_SPEECH_MIN = 0.8
MADE_UP_NOTE = 0.05  # share of the square frame past the photo's edge that earns a note
FULL_FRAME_MAX_CROP = 1024  # px: beyond this the face is animated at 1024 and scaled up


@dataclass(frozen=True)
class RenderSummary:
    frames: int
    seconds: float  # wall time of the whole job
    video_seconds: float
    width: int
    height: int
    notes: tuple[str, ...] = ()
    watermark_id: str | None = None  # 8 hex digits carried by every frame; None: --no-watermark

    @property
    def fps(self) -> float:
        return self.frames / max(self.seconds, 1e-9)


def rig_from_photo(path: str | os.PathLike[str], size: int = 512, face: int | None = None,
                   full_frame: bool = False) -> tuple[FaceRig, np.ndarray]:
    photo = read_image(path)
    rig = build_rig(photo, size=size, face=face)
    if full_frame:  # animate at the photo's own resolution, so the pasted face is as sharp as the rest
        native = full_frame_crop_size(rig, photo)
        if native > rig.size * 1.15:
            rig = build_rig(photo, size=native, face=face)
    return rig, photo


def features_from_audio(path: str | os.PathLike[str], fps: float, phones: bool = True) -> Features:
    info = probe_audio(path)
    features = audio_features(iter_audio(path, rate=SAMPLE_RATE), SAMPLE_RATE, fps, phones=phones)
    n_frames = max(1, int(round(info.duration * fps)))
    if len(features) < n_frames:  # container duration and decoded samples can differ by a frame
        pad = n_frames - len(features)
        features = Features(fps, *(np.pad(a, (0, pad)) for a in
                                   (features.loudness, features.level_db, features.brightness, features.active)),
                            features.phones, None if features.pitch_hz is None else np.pad(features.pitch_hz, (0, pad)))
    return features


def features_for(audio: str | os.PathLike[str], fps: float, text: str | None = None) -> tuple[Features, list[str]]:
    """The voice's features, their phones aligned to `text` (the words it says) when given; and
    notes for the user (an alignment that failed falls back to the phones heard)."""
    if text is None:
        return features_from_audio(audio, fps), []
    features = features_from_audio(audio, fps, phones=False)  # the phones come from the words
    samples = read_audio(audio, rate=SAMPLE_RATE)
    phones = align_phones(samples, text)
    if phones is not None:  # too few words squeeze into part of the speech and call the rest silence
        voiced = features.active > 0.5
        spoken = ~silent_frames(phones, 0, len(features), fps)
        if voiced.any() and spoken[voiced].mean() < ALIGNED_SPEECH_MIN:
            phones = None
    if phones is None:
        return (replace(features, phones=recognise_phones(samples)),
                ["the voice did not align with --text: the lips follow the phones heard instead"])
    return replace(features, phones=phones), []


def frames(rig: FaceRig, track: MotionTrack, paster: Paster | None = None) -> Iterator[np.ndarray]:
    """Render every frame of `track` (pasted into the full photo when `paster` is given)."""
    renderer = Renderer(rig)
    for i in range(len(track)):
        frame = renderer.render(track.frame(i))
        yield paster.paste(frame) if paster is not None else frame


def render_video(image: str | os.PathLike[str], audio: str | os.PathLike[str], out: str | os.PathLike[str], *,
                 size: int = 512, fps: float = 25.0, controls: Controls | ControlTrack = Controls(),
                 full_frame: bool = False, face: int | None = None, progress: Progress | None = None,
                 watermark: bool = True, label: bool = False, text: str | None = None) -> RenderSummary:
    """Photo + voice -> MP4 at `out` (written atomically: no partial file on failure).

    text: the words the voice says (English), to place every lip shape exactly (`audio.transcript`).

    watermark: the invisible mark in every frame (turning it off is recorded in the file's tags);
    label: burn a visible "AI-generated" tag into a corner.
    """
    start = time.perf_counter()
    check_fps(fps)
    check_output_path(out)  # a misspelt folder or word should fail before any work is done
    if text is not None:
        words_of(text)
    rig, photo = rig_from_photo(image, size=size, face=face, full_frame=full_frame)
    return write_video(rig, photo, audio, out, fps=fps, controls=controls, full_frame=full_frame,
                       progress=progress, started=start, watermark=watermark, label=label, text=text)


def full_frame_crop_size(rig: FaceRig, photo: np.ndarray) -> int:
    """Crop side that matches the pasted region's size in the full-frame output (even, capped)."""
    h, w = photo.shape[:2]
    shrink = min(1.0, FULL_FRAME_MAX_SIDE / max(h, w))
    side = rig.crop_to_photo[0, 0] * rig.size * shrink
    return int(min(FULL_FRAME_MAX_CROP, max(rig.size, side)) // 2 * 2)


def check_fps(fps: float) -> None:
    if not 1 <= fps <= 120:
        raise FacetalkError(f"--fps must be within 1..120, got {fps}")


def photo_notes(rig: FaceRig, full_frame: bool) -> list[str]:
    """What a user should know about how the photo was read."""
    notes = []
    if rig.n_faces > 1:
        notes.append(f"the photo has {rig.n_faces} faces; animated face {rig.face_index} "
                     f"(largest first; pick another with --face N)")
    made_up = float((beyond_photo(rig.crop_to_photo, rig.size, rig.photo_shape) > 0).mean())
    if not full_frame and made_up > MADE_UP_NOTE:
        notes.append(f"the photo ends close around the face: {made_up:.0%} of the frame lies beyond it and is "
                     "filled in, blurred; --full-frame keeps the photo's own frame")
    return notes


def write_video(rig: FaceRig, photo: np.ndarray, audio: str | os.PathLike[str], out: str | os.PathLike[str], *,
                fps: float = 25.0, controls: Controls | ControlTrack = Controls(), full_frame: bool = False,
                progress: Progress | None = None, started: float | None = None, watermark: bool = True,
                label: bool = False, text: str | None = None) -> RenderSummary:
    """An analysed photo + voice -> MP4 at `out` (watermark, label and text as for render_video)."""
    start = time.perf_counter() if started is None else started
    check_fps(fps)
    features, notes = features_for(audio, fps, text)
    track = generate(features, controls)
    return _write(rig, photo, track, out, audio, full_frame, progress, photo_notes(rig, full_frame) + notes, start,
                  marks_for(rig, photo, track, full_frame, watermark, label))


def marks_for(rig: FaceRig, photo: np.ndarray, track: MotionTrack, full_frame: bool, watermark: bool,
              label: bool) -> Marks:
    """What marks the frames of rendering `track` with `rig`: the watermark (unless turned off), with
    an id digested from everything that decides those frames (same render, same id: `--seed` stays
    reproducible), and the visible label if asked."""
    if not watermark:
        return Marks(None, label)
    settings = f"facetalk {__version__}; size {rig.size}; full frame {full_frame}; fps {track.fps}; label {label}"
    return Marks(Payload.of(settings, photo, rig.landmarks, track.values), label)


def _write(rig: FaceRig, photo: np.ndarray, track: MotionTrack, out: str | os.PathLike[str],
           audio: str | os.PathLike[str] | None, full_frame: bool, progress: Progress | None, notes: list[str],
           started: float, marks: Marks) -> RenderSummary:
    """Render `track`, mark every frame, and write it with `audio`'s sound track and the
    provenance tags to `out` (atomically)."""
    paster = Paster(photo, rig.crop_to_photo, rig.size) if full_frame else None
    width, height = paster.size if paster else (rig.size, rig.size)
    with VideoWriter(out, width, height, fps=track.fps, audio_path=audio, metadata=marks.metadata()) as writer:
        for i, frame in enumerate(frames(rig, track, paster)):
            writer.write(marks.apply(frame))
            if progress is not None:
                progress(i + 1, len(track))
    return RenderSummary(len(track), time.perf_counter() - started, track.duration, width, height, tuple(notes),
                         marks.watermark_id)


# --- reenactment: photo + driving video -> MP4 (driving video -> face.track -> motion.encode) ------

@dataclass(frozen=True)
class DrivingMotion:
    """A driving video encoded once: its motion at `track.fps`, ready for any number of photos."""

    track: MotionTrack
    frames: int  # video frames read
    faces: int  # of those, frames where a face was tracked
    has_audio: bool


def encode_driving(driving: str | os.PathLike[str], fps: float | None = None,
                   progress: Progress | None = None) -> DrivingMotion:
    """Track the face through a driving video and encode its motion (relative to its own start)
    at `fps` (default: the video's own average rate). Memory stays flat in the video's length."""
    info = probe_video(driving)
    rate = info.fps if fps is None else fps
    check_fps(rate)
    encoder = MotionEncoder()
    n = 0
    for tracked in track_video(driving):
        encoder.push(tracked.time, tracked.landmarks)
        n += 1
        if progress is not None:
            progress(n, max(n, info.n_frames))
    if encoder.found == 0:
        raise FacetalkError(f"no face found in the driving video '{driving}' ({n} frames); use a video where "
                            "one face is clearly visible, frontal or up to a three-quarter view")
    duration = info.duration if info.duration > 0 else None
    return DrivingMotion(encoder.finish(rate, duration), n, encoder.found, info.has_audio)


def animate_video(image: str | os.PathLike[str], driving: str | os.PathLike[str], out: str | os.PathLike[str], *,
                  parts: tuple[str, ...] = ALL_PARTS, size: int = 512, fps: float | None = None,
                  controls: Controls | ControlTrack = Controls(), full_frame: bool = False, face: int | None = None,
                  progress: Progress | None = None, watermark: bool = True, label: bool = False) -> RenderSummary:
    """Photo + driving video -> MP4 at `out`: the photo moves as the driver does (from the driver's
    first frame on), with the driver's sound. Written atomically: no partial file on failure."""
    start = time.perf_counter()
    check_output_path(out)
    rig, photo = rig_from_photo(image, size=size, face=face, full_frame=full_frame)
    halves = None if progress is None else _two_halves(progress)
    motion = encode_driving(driving, fps, None if halves is None else halves[0])
    return write_animation(rig, photo, motion, driving, out, parts=parts, controls=controls, full_frame=full_frame,
                           progress=None if halves is None else halves[1], started=start, watermark=watermark,
                           label=label)


def _two_halves(progress: Progress) -> tuple[Progress, Progress]:
    """One progress bar over two passes of the same frames (tracking, then rendering)."""
    def first(done: int, total: int) -> None:
        progress(done, 2 * total)

    def second(done: int, total: int) -> None:
        progress(total + done, 2 * total)

    return first, second


def write_animation(rig: FaceRig, photo: np.ndarray, motion: DrivingMotion, driving: str | os.PathLike[str],
                    out: str | os.PathLike[str], *, parts: tuple[str, ...] = ALL_PARTS,
                    controls: Controls | ControlTrack = Controls(), full_frame: bool = False,
                    progress: Progress | None = None, started: float | None = None, watermark: bool = True,
                    label: bool = False) -> RenderSummary:
    """An analysed photo + an encoded driving video -> MP4 at `out`, with the driver's sound.

    Parts of the motion not in `parts` stay at the photo's rest (see motion.encode.take_parts);
    the controls steer the driven motion as they steer generated motion (motion.encode.with_controls).
    """
    start = time.perf_counter() if started is None else started
    track = with_controls(take_parts(motion.track, parts), controls)
    notes = photo_notes(rig, full_frame)
    if not motion.has_audio:
        notes.append("the driving video has no sound track; the output is silent")
    if motion.faces < motion.frames:
        notes.append(f"no face in {motion.frames - motion.faces} of the driving video's {motion.frames} frames; "
                     "the motion was carried over them")
    return _write(rig, photo, track, out, driving if motion.has_audio else None, full_frame, progress, notes, start,
                  marks_for(rig, photo, track, full_frame, watermark, label))
