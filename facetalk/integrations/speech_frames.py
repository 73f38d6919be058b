"""Pair each frame of a live session with the slice of speech it shows.

Agent frameworks play a video frame and the sound that belongs to it side by side (LiveKit's
AvatarRunner pushes both through one AVSynchronizer), so the speech is cut exactly where the
session cuts its frames and handed back beside the frame that shows it. The listener hears the
speech as it came (its own rate and channels, untouched); a 16 kHz mono copy drives the session.

    frames = SpeechFrames(avatar.stream(fps=25), rate=24000)
    for spoken in frames.speak(pcm):   # (n, channels) int16 at 24 kHz, any length
        show(spoken.frame.image); play(spoken.speech)
    frames.end_speech()                # the utterance's last frame, then listening frames
    frames.listen()                    # one frame of silence: call at the frame rate while quiet
    frames.interrupt()                 # the agent was cut off: drop its unplayed speech

Not thread-safe, like the session it drives: one caller at a time.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from facetalk.errors import FacetalkError
from facetalk.media.audio import SAMPLE_RATE, PcmResampler
from facetalk.stream.session import LiveFrame, Session

# end_speech pushes silence until the last spoken frame is out: the session holds one frame of
# lookahead, and a resampled frame can fall a sample short of its boundary; more means a bug.
_MAX_FLUSH_FRAMES = 4


@dataclass(frozen=True)
class SpokenFrame:
    frame: LiveFrame
    # the sound the frame shows: (n, channels) int16 at the speech's rate, n = one frame's samples
    # (fewer for the last frame of an utterance); None for a listening frame (silence, play nothing)
    speech: np.ndarray | None


class SpeechFrames:
    """A live session fed one frame of sound at a time, each frame returned with its sound."""

    def __init__(self, session: Session, rate: int, channels: int = 1) -> None:
        if rate <= 0 or channels <= 0:
            raise FacetalkError(f"speech needs a positive rate and channel count, got {rate} Hz, {channels} channels")
        self.session = session
        self.rate = rate
        self.channels = channels
        self._pending = np.zeros((0, channels), np.int16)  # speech short of a whole frame
        self._unshown: deque[np.ndarray | None] = deque()  # sound of frames pushed, not yet returned
        self._first = session.frames_out  # index of the frame _unshown[0] belongs to
        self._resampler = PcmResampler(rate, SAMPLE_RATE)
        self._fed = 0  # samples at `rate` given to this resampler

    @property
    def fps(self) -> float:
        return self.session.fps

    @property
    def speaking(self) -> bool:
        """Speech was given whose frames have not all come back."""
        return len(self._pending) > 0 or any(s is not None for s in self._unshown)

    def speak(self, pcm: np.ndarray) -> list[SpokenFrame]:
        """Speech at `rate`: int16 (n, channels), or (n,) when mono; any length. The frames it completes."""
        self._pending = np.concatenate([self._pending, self._shaped(pcm)])
        out: list[SpokenFrame] = []
        while len(self._pending) >= (n := self._next_length()):
            piece, self._pending = self._pending[:n], self._pending[n:]
            out += self._push(piece)
        return out

    def end_speech(self) -> list[SpokenFrame]:
        """The utterance is over: its last, partial frame is completed with silence (its sound comes
        back as it was, short), then silence follows until that frame is out, so every spoken frame
        has been returned when this returns."""
        out: list[SpokenFrame] = []
        if len(self._pending):
            piece, self._pending = self._pending, self._pending[:0]
            out += self._push(piece)
        for _ in range(_MAX_FLUSH_FRAMES):
            if not any(s is not None for s in self._unshown):
                return out
            out += self.listen()
        raise AssertionError(f"the session held spoken frames back after {_MAX_FLUSH_FRAMES} frames of silence")

    def listen(self) -> list[SpokenFrame]:
        """One frame of silence: the session makes a listening face from it. Speech short of a frame
        waits for the rest of its frame (the utterance ran dry mid-word)."""
        return self._push(None)

    def interrupt(self) -> None:
        """Drop the speech not yet shown. The session's held-back frames go silent (they come back
        as listening frames, without their sound) and its clock runs on, so frames keep their
        boundaries; speech short of a frame, and the resampler's last millisecond, are dropped here."""
        self.session.interrupt()
        self._pending = self._pending[:0]
        self._unshown = deque(None for _ in self._unshown)
        self._resampler = PcmResampler(self.rate, SAMPLE_RATE)  # primed afresh: the count stays exact
        self._fed = 0

    def close(self) -> list[SpokenFrame]:
        """The session's last frames (with their sound); the session is closed after."""
        return self._paired(self.session.close())

    def _next_length(self) -> int:
        """Samples at `rate` in the next frame to push: the session's own frame boundaries."""
        k = self._first + len(self._unshown)
        return round((k + 1) * self.rate / self.fps) - round(k * self.rate / self.fps)

    def _push(self, piece: np.ndarray | None) -> list[SpokenFrame]:
        n = self._next_length()
        mono = np.zeros(n, np.float32)
        if piece is not None:
            mono[:len(piece)] = piece.mean(axis=1) / 32768.0
        self._unshown.append(piece)
        return self._paired(self.session.push(self._to_session(mono)))

    def _to_session(self, mono: np.ndarray) -> np.ndarray:
        """16 kHz for the session. The resampler's first output falls short by its filter delay
        (1 ms); that much silence goes first so the session's frames end where this side's do."""
        first = self._fed == 0
        x = self._resampler.feed(mono)
        self._fed += len(mono)
        if first:
            short = round(self._fed * SAMPLE_RATE / self.rate) - len(x)
            if short > 0:
                x = np.concatenate([np.zeros(short, np.float32), x])
        return x

    def _paired(self, frames: list[LiveFrame]) -> list[SpokenFrame]:
        out = []
        for f in frames:
            while self._first < f.index and self._unshown:  # never expected: frames come in order
                self._unshown.popleft()
                self._first += 1
            speech = self._unshown.popleft() if self._unshown and self._first == f.index else None
            self._first = f.index + 1
            out.append(SpokenFrame(f, speech))
        return out

    def _shaped(self, pcm: np.ndarray) -> np.ndarray:
        x = np.asarray(pcm)
        if x.ndim == 1 and self.channels == 1:
            x = x[:, None]
        if x.ndim != 2 or x.shape[1] != self.channels or x.dtype != np.int16:
            raise FacetalkError(f"expected int16 speech of shape (n, {self.channels}), got {x.shape} {x.dtype}")
        return x
