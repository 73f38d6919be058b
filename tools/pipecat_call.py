"""Call the example Pipecat bot (examples/pipecat_bot.py) from Python, as a browser would, and
measure what comes back: the video's frame rate, the voice, the avatar's mouth over time and,
with --barge-in, how fast the mouth shuts when the caller talks over it.

    python examples/pipecat_bot.py --port 7860 &
    python tools/pipecat_call.py http://localhost:7860 --seconds 9 --barge-in 4

The caller's microphone is an aiortc track: silence, then (--barge-in S) 1.5 s of the built-in voice
from S s on. The mouth opening is MediaPipe's inner-lip gap over the eye-corner distance, measured on
the frames as received (after VP8), so it includes the transport's whole video path.
"""

from __future__ import annotations

import argparse
import asyncio
import fractions
import json
import time
import urllib.request

import av
import numpy as np
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import AudioStreamTrack, MediaStreamError

from facetalk.face.track import FaceTracker
from facetalk.media.audio import PcmResampler, read_audio

MIC_RATE, MIC_CHUNK = 48000, 960  # 20 ms frames, as browsers send
BARGE_S = 1.5


class Microphone(AudioStreamTrack):
    """Silence, then the built-in voice from `barge_in` s on (None: silence only), in real time."""

    def __init__(self, barge_in: float | None) -> None:
        super().__init__()
        from importlib import resources

        voice = read_audio(str(resources.files("facetalk.assets") / "voice.wav"))[16000 * 4:int(16000 * (4 + BARGE_S))]
        self._voice = np.round(np.clip(PcmResampler(16000, MIC_RATE).feed(voice), -1, 1) * 32767).astype("<i2")
        self._start = None if barge_in is None else int(barge_in * MIC_RATE)
        self._n = 0
        self._t0 = 0.0
        self.started_at: float | None = None  # wall time of the first frame sent

    @property
    def barge_in_at(self) -> float | None:
        """Wall time the voice starts."""
        return None if self._start is None or self.started_at is None else self.started_at + self._start / MIC_RATE

    async def recv(self) -> av.AudioFrame:
        if self._n == 0:
            self._t0, self.started_at = time.monotonic(), time.time()
        wait = self._t0 + self._n / MIC_RATE - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        pcm = np.zeros(MIC_CHUNK, "<i2")
        if self._start is not None and 0 <= self._n - self._start < len(self._voice):
            part = self._voice[self._n - self._start:self._n - self._start + MIC_CHUNK]
            pcm[:len(part)] = part
        frame = av.AudioFrame.from_ndarray(pcm[None, :], format="s16", layout="mono")
        frame.sample_rate, frame.pts, frame.time_base = MIC_RATE, self._n, fractions.Fraction(1, MIC_RATE)
        self._n += MIC_CHUNK
        return frame


async def call(url: str, seconds: float, mic: Microphone) -> tuple[list, list]:
    """(video, audio): [(wall time, frame)] received during the call."""
    pc = RTCPeerConnection()
    pc.addTrack(mic)  # transceiver order as the transport expects: audio, then video
    pc.addTransceiver("video", direction="sendrecv")
    pc.createDataChannel("messages")
    video: list = []
    audio: list = []
    readers = []

    async def read(track, out: list) -> None:
        try:
            while True:
                frame = await track.recv()
                out.append((time.time(), frame))
        except MediaStreamError:
            pass

    @pc.on("track")
    def on_track(track) -> None:
        readers.append(asyncio.ensure_future(read(track, video if track.kind == "video" else audio)))

    await pc.setLocalDescription(await pc.createOffer())
    body = json.dumps({"sdp": pc.localDescription.sdp, "type": pc.localDescription.type}).encode()
    request = urllib.request.Request(url.rstrip("/") + "/api/offer", body, {"Content-Type": "application/json"})
    answer = json.loads(await asyncio.to_thread(lambda: urllib.request.urlopen(request, timeout=60).read()))
    await pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], answer["type"]))
    await asyncio.sleep(seconds)
    await pc.close()
    for r in readers:
        r.cancel()
    return video, audio


def mouth_openings(images: list[np.ndarray]) -> np.ndarray:
    out = []
    with FaceTracker() as tracker:
        for image in images:
            lm = tracker.process(np.ascontiguousarray(image))
            out.append(np.nan if lm is None else
                       np.linalg.norm(lm[13, :2] - lm[14, :2]) / np.linalg.norm(lm[33, :2] - lm[263, :2]))
    return np.array(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", nargs="?", default="http://localhost:7860")
    parser.add_argument("--seconds", type=float, default=9.0)
    parser.add_argument("--barge-in", type=float, default=None, help="talk over the bot from this second on")
    args = parser.parse_args()
    t0 = time.time()
    mic = Microphone(args.barge_in)
    video, audio = asyncio.run(call(args.url, args.seconds, mic))
    if not video:
        raise SystemExit("no video came back")
    times = np.array([t for t, _ in video]) - t0
    barge = None if mic.barge_in_at is None else mic.barge_in_at - t0
    images = [f.to_ndarray(format="rgb24") for _, f in video]
    steady = times > times[0] + 1.0
    print(f"call started {time.strftime('%H:%M:%S', time.gmtime(t0))}.{int(t0 % 1 * 1000):03d} UTC (to compare with the "
          "bot's log)" + ("" if barge is None else f"; the caller starts talking {barge:.2f} s in"))
    print(f"video: {len(images)} frames {images[0].shape[1]}x{images[0].shape[0]}, first {times[0]:.2f} s after "
          f"the offer, {(steady.sum() - 1) / np.ptp(times[steady]):.1f} fps received after the first second")
    pcm = np.concatenate([f.to_ndarray().reshape(-1).astype(np.float32) for _, f in audio])
    rate = audio[0][1].sample_rate
    print(f"voice: {len(pcm) / rate / len(audio[0][1].layout.channels):.1f} s at {rate} Hz")
    opening = mouth_openings(images)
    print("mouth opening (inner-lip gap / eye-corner distance), per 0.25 s of the call: mean (max)")
    for s in np.arange(0, args.seconds, 0.25):
        m = (times >= s) & (times < s + 0.25)
        if m.any():
            mark = "  <- the caller starts talking" if barge is not None and s <= barge < s + 0.25 else ""
            print(f"  {s:5.2f} s  {np.nanmean(opening[m]):.3f} ({np.nanmax(opening[m]):.3f}){mark}")


if __name__ == "__main__":
    main()
