"""The Python API: a small, stable facade over the pipeline stages.

    avatar = Avatar.from_image("me.jpg")
    avatar.render_to("out.mp4", "voice.wav")
    avatar.animate_to("out.mp4", "driving.mp4")   # reenactment: move as the face in a video does
    for frame in avatar.speak("voice.wav"):   # RGB uint8 frames, 512x512 by default
        ...
    session = avatar.stream()                 # live: 16 kHz PCM chunks in, frames out
    for f in session.push(pcm_chunk):         # f.index, f.time (s), f.image (RGB uint8)
        ...
    session.close()                           # the last frames

Every frame carries the invisible watermark (`watermark=False` turns it off; a file then says so
in its tags) and, with `label=True`, a visible "AI-generated" tag; see facetalk/safety.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from facetalk.face.rig import FaceRig, build_rig
from facetalk.media.image import read_image
from facetalk.motion.controls import Controls, ControlTrack
from facetalk.motion.generate import generate
from facetalk.motion.encode import ALL_PARTS
from facetalk.pipeline import (Progress, RenderSummary, encode_driving, features_for, frames, marks_for,
                               write_animation, write_video)
from facetalk.render.paste import Paster
from facetalk.safety.marks import Marks
from facetalk.stream.session import FrameCallback, Session

PathLike = str | os.PathLike[str]


@dataclass(frozen=True)
class Avatar:
    """A portrait analysed once, ready to speak any number of clips."""

    rig: FaceRig
    photo: np.ndarray
    source: str | None = None

    @staticmethod
    def from_image(image: PathLike | np.ndarray, size: int = 512, face: int | None = None) -> "Avatar":
        """From a file path or an RGB uint8 array (H, W, 3)."""
        if isinstance(image, np.ndarray):
            if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
                raise ValueError(f"expected an (H, W, 3) uint8 RGB array, got {image.shape} {image.dtype}")
            photo, source = image, None
        else:
            photo, source = read_image(image), os.fspath(image)
        return Avatar(build_rig(photo, size=size, face=face), photo, source)

    def speak(self, audio: PathLike, controls: Controls | ControlTrack = Controls(), fps: float = 25.0,
              full_frame: bool = False, watermark: bool = True, label: bool = False,
              text: str | None = None) -> Iterator[np.ndarray]:
        """RGB frames of the avatar saying `audio`, one per 1/fps s of it, marked as render_to's
        (text: as for render_to)."""
        track = generate(features_for(audio, fps, text)[0], controls)
        paster = Paster(self.photo, self.rig.crop_to_photo, self.rig.size) if full_frame else None
        marks = marks_for(self.rig, self.photo, track, full_frame, watermark, label)
        return map(marks.apply, frames(self.rig, track, paster))

    def stream(self, controls: Controls | ControlTrack = Controls(), fps: float = 25.0,
               on_frame: FrameCallback | None = None, watermark: bool = True, label: bool = False) -> Session:
        """A live session: push 16 kHz mono PCM as it comes, frames come out one frame behind it
        (see stream.session), marked as the files are (`session.marks.watermark_id`). Any number
        of sessions can share one avatar."""
        return Session(self.rig, controls, fps, on_frame, Marks.new(watermark, label))

    def render_to(self, path: PathLike, audio: PathLike, controls: Controls | ControlTrack = Controls(),
                  fps: float = 25.0, full_frame: bool = False, progress: Progress | None = None,
                  watermark: bool = True, label: bool = False, text: str | None = None) -> RenderSummary:
        """Write an MP4 (H.264 + AAC with the original audio) atomically to `path`.

        watermark: the invisible mark (its id is in the summary; off is recorded in the tags);
        label: a visible "AI-generated" tag in the bottom-right corner;
        text: the words `audio` says (English): every lip shape placed by aligning them to the sound.
        """
        return write_video(self.rig, self.photo, audio, path, fps=fps, controls=controls,
                           full_frame=full_frame, progress=progress, watermark=watermark, label=label, text=text)

    def animate_to(self, path: PathLike, driving: PathLike, parts: tuple[str, ...] = ALL_PARTS,
                   controls: Controls | ControlTrack = Controls(), fps: float | None = None, full_frame: bool = False,
                   progress: Progress | None = None, watermark: bool = True, label: bool = False) -> RenderSummary:
        """Write an MP4 of the avatar moving as the face in the `driving` video does, with its sound.

        parts: what to take from the driver: "pose", "expression" (the whole face) and/or "lips";
        the rest stays as in the photo. fps: default the driving video's own rate.
        watermark, label: as for render_to.
        """
        motion = encode_driving(driving, fps)
        return write_animation(self.rig, self.photo, motion, driving, path, parts=parts, controls=controls,
                               full_frame=full_frame, progress=progress, watermark=watermark, label=label)

