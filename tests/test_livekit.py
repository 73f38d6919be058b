"""The LiveKit Agents video generator, driven directly: agent speech in, frames with their sound out.

No LiveKit server can be had here, so no room is joined: the generator is fed `rtc.AudioFrame`s
as `AvatarRunner` feeds it and its output is read as the runner reads it; the last test runs the
real `AvatarRunner` and `AVSynchronizer` over a stand-in room object that only records the tracks.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import time
from collections.abc import AsyncIterator

import numpy as np
import pytest

rtc = pytest.importorskip("livekit.rtc")
avatar_api = pytest.importorskip("livekit.agents.voice.avatar")

from facetalk.api import Avatar  # noqa: E402
from facetalk.face import landmarks as L  # noqa: E402
from facetalk.integrations.livekit import IDLE_LEAD_S, FacetalkVideoGenerator  # noqa: E402
from facetalk.media.audio import read_audio  # noqa: E402

AudioSegmentEnd = avatar_api.AudioSegmentEnd
FPS = 25.0
RATE = 24000  # the agent's TTS rate and the generator's output rate
PER_FRAME = int(RATE / FPS)
DARK = 60  # grey level: the open mouth's cavity is darker, skin and lips are not
OPEN = 0.03  # fraction of the mouth box that is dark when the mouth is clearly open
CLOSED_MARGIN = 0.01  # a closed mouth is this close to the listening face's dark fraction


@pytest.fixture(scope="module")
def avatar(rig, portrait: np.ndarray) -> Avatar:
    return Avatar(rig, np.array(portrait))


@pytest.fixture(scope="module")
def speech(voice_path) -> np.ndarray:
    """3 s of the built-in voice at 24 kHz, int16 mono: what a TTS sends."""
    x = read_audio(voice_path, rate=RATE)[: 3 * RATE]
    return np.round(x * 32767).astype(np.int16)


def chunks(pcm: np.ndarray, rate: int, ms: int) -> list:
    """`pcm` (n,) or (n, channels) int16 as rtc.AudioFrames of `ms` each, as an agent streams it."""
    x = pcm if pcm.ndim == 2 else pcm[:, None]
    step = rate * ms // 1000
    return [rtc.AudioFrame(np.ascontiguousarray(x[i:i + step]).tobytes(), rate, x.shape[1], len(x[i:i + step]))
            for i in range(0, len(x), step)]


async def say(gen: FacetalkVideoGenerator, pcm: np.ndarray, rate: int = RATE, ms: int = 20) -> None:
    for frame in chunks(pcm, rate, ms):
        await gen.push_audio(frame)
    await gen.push_audio(AudioSegmentEnd())


async def take_until_end(items: AsyncIterator) -> list:
    out = []
    async for item in items:
        out.append(item)
        if isinstance(item, AudioSegmentEnd):
            return out
    raise AssertionError("the generator stopped")


async def take(items: AsyncIterator, n: int) -> list:
    return [await anext(items) for _ in range(n)]


def kinds(items: list) -> str:
    """V: video frame, A: audio frame, E: end of segment."""
    return "".join("V" if isinstance(x, rtc.VideoFrame) else "A" if isinstance(x, rtc.AudioFrame) else "E"
                   for x in items)


def samples(items: list) -> np.ndarray:
    parts = [np.frombuffer(x.data, np.int16).reshape(-1, x.num_channels)
             for x in items if isinstance(x, rtc.AudioFrame)]
    return np.concatenate(parts) if parts else np.zeros((0, 1), np.int16)


def rgb(frame) -> np.ndarray:
    return np.frombuffer(frame.data, np.uint8).reshape(frame.height, frame.width, 4)[..., :3]


def mouth_box(avatar: Avatar) -> tuple[slice, slice]:
    lips = avatar.rig.landmarks[list(L.LIPS_INNER), :2]
    (x0, y0), (x1, y1) = np.floor(lips.min(0)).astype(int) - 4, np.ceil(lips.max(0)).astype(int) + 4
    return slice(y0, y1), slice(x0, x1)


def mouth_opening(image: np.ndarray, box: tuple[slice, slice]) -> float:
    """Fraction of the mouth box that is dark: ~0 closed, 0.02-0.17 while speaking (the cavity shows)."""
    return float((image[box].astype(np.float32).mean(axis=2) < DARK).mean())


def test_each_frame_leaves_with_its_own_speech_then_listening_frames_follow(avatar: Avatar, speech: np.ndarray) -> None:
    pcm = speech[: 2 * RATE + 300]  # a last frame that is not whole

    async def run() -> tuple[list, list]:
        gen = FacetalkVideoGenerator(avatar, fps=FPS, sample_rate=RATE)
        items = aiter(gen)
        await say(gen, pcm)
        utterance = await take_until_end(items)
        after = await take(items, 5)
        await gen.aclose()
        return utterance, after

    utterance, after = asyncio.run(run())
    frames = -(-len(pcm) // PER_FRAME)
    assert kinds(utterance) == "VA" * frames + "E"  # each frame, then its sound; the end after the last
    audio = [x for x in utterance if isinstance(x, rtc.AudioFrame)]
    assert all(a.sample_rate == RATE and a.num_channels == 1 for a in audio)
    assert [a.samples_per_channel for a in audio] == [PER_FRAME] * (frames - 1) + [len(pcm) % PER_FRAME]
    assert np.array_equal(samples(utterance)[:, 0], pcm)  # the speech untouched, whole, in order
    video = [x for x in utterance if isinstance(x, rtc.VideoFrame)]
    assert all((v.width, v.height, v.type) == (512, 512, rtc.VideoBufferType.RGBA) for v in video)
    assert len({bytes(v.data) for v in video}) > frames // 2  # the face moves
    assert kinds(after) == "VVVVV"  # silence: listening frames, no sound


def test_frames_show_the_sound_they_leave_with(avatar: Avatar, speech: np.ndarray, voice: np.ndarray) -> None:
    """Frame i of the generator is frame i of a session fed the same speech directly (at 16 kHz, a
    frame at a time: the live phone reading depends on how the sound is cut): ~4 grey levels apart
    in the mouth where the neighbours are ~13 apart, so pairing a frame with its neighbour's sound
    would fail."""
    pcm = speech[: 2 * RATE]

    async def run() -> list:
        gen = FacetalkVideoGenerator(avatar, fps=FPS, sample_rate=RATE, watermark=False)
        items = aiter(gen)
        await say(gen, pcm)
        return await take_until_end(items)

    box = mouth_box(avatar)
    got = [rgb(x)[box].astype(np.float32) for x in asyncio.run(run()) if isinstance(x, rtc.VideoFrame)]
    session = avatar.stream(fps=FPS, watermark=False)  # fed frame by frame, as the generator feeds it
    direct = [f.image[box].astype(np.float32)
              for i in range(0, 32000, 640) for f in session.push(np.array(voice[i:i + 640]))]
    assert len(got) == 2 * int(FPS) and len(direct) == len(got) - 1  # the last waits for close()
    for shift in (-1, 1, 2):
        both = [i for i in range(len(direct)) if 0 <= i + shift < len(direct)]
        same = np.mean([np.abs(got[i] - direct[i]).mean() for i in both])
        other = np.mean([np.abs(got[i] - direct[i + shift]).mean() for i in both])
        assert same < 0.5 * other, (shift, same, other)


def test_speech_at_any_rate_and_channels_leaves_at_the_published_format(avatar: Avatar, speech: np.ndarray) -> None:
    """48 kHz stereo in 10 ms frames (a WebRTC source) for a runner publishing 24 kHz mono."""
    mono48 = np.repeat(speech[: 2 * RATE], 2)  # 2 s at 48 kHz
    stereo = np.stack([mono48, mono48 // 2], axis=1).astype(np.int16)

    async def run() -> list:
        gen = FacetalkVideoGenerator(avatar, fps=FPS, sample_rate=RATE, channels=1)
        items = aiter(gen)
        await say(gen, stereo, rate=48000, ms=10)
        return await take_until_end(items)

    utterance = asyncio.run(run())
    assert kinds(utterance) == "VA" * 50 + "E"
    audio = [x for x in utterance if isinstance(x, rtc.AudioFrame)]
    assert all(a.sample_rate == RATE and a.num_channels == 1 for a in audio)
    out = samples(utterance)[:, 0].astype(np.float64)
    assert abs(len(out) - 2 * RATE) <= 2  # all of it: 2 s
    level_in = np.abs(speech[: 2 * RATE].astype(np.float64) * 0.75).reshape(-1, PER_FRAME).mean(1)
    level_out = np.abs(out[: 2 * RATE]).reshape(-1, PER_FRAME).mean(1)
    assert np.corrcoef(level_in, level_out)[0, 1] > 0.98  # the same speech, frame by frame
    assert level_out.sum() == pytest.approx(level_in.sum(), rel=0.05)  # the channels' mean


def test_listening_frames_come_at_the_frame_rate_until_speech_starts(avatar: Avatar, speech: np.ndarray) -> None:
    async def run() -> tuple[list, float, list]:
        gen = FacetalkVideoGenerator(avatar, fps=FPS, sample_rate=RATE)
        items = aiter(gen)
        await anext(items)  # the first frame starts the clock (and pays the session's set-up)
        start = time.monotonic()
        quiet = await take(items, 12)
        elapsed = time.monotonic() - start
        await say(gen, speech[: RATE // 2])
        spoken = await take_until_end(items)
        return quiet, elapsed, spoken

    quiet, elapsed, spoken = asyncio.run(run())
    assert kinds(quiet) == "V" * 12
    assert elapsed >= 11 / FPS - IDLE_LEAD_S - 0.005  # in real time, never rushed ahead (the 1st may be due)
    # the speech starts at once: at most the listening frame the session held back comes first
    assert re.fullmatch(r"V?(VA){13}E", kinds(spoken)), kinds(spoken)  # 0.5 s: 12.5 frames


def test_clear_buffer_drops_unplayed_speech_and_closes_the_mouth(avatar: Avatar, speech: np.ndarray) -> None:
    """Cut mid-word (after 1.04 s, the mouth opening wide): no more of that speech, and the mouth
    is shut within 100 ms. The session's held-back frame goes silent, so the first frame after the
    cut is already closing (without Session.interrupt it would open further, to ~0.08)."""
    box = mouth_box(avatar)
    cut = 26  # spoken frames played before the cut

    async def run() -> tuple[list, list, list, list]:
        gen = FacetalkVideoGenerator(avatar, fps=FPS, sample_rate=RATE)
        items = aiter(gen)
        rest = await take(items, 3)
        await say(gen, speech)  # 3 s, all sent at once as a TTS does
        played: list = []
        async for item in items:
            played.append(item)
            if kinds(played).count("A") == cut:
                break
        gen.clear_buffer()
        after = await take(items, 12)
        await say(gen, speech[: RATE // 2])  # the next utterance plays whole
        nxt = await take_until_end(items)
        return rest, played, after, nxt

    rest, played, after, nxt = asyncio.run(run())
    assert re.fullmatch(r"V?(VA)+", kinds(played)), kinds(played)
    assert kinds(after) == "V" * 12  # no more of its sound, no end of segment
    at_rest = max(mouth_opening(rgb(v), box) for v in rest)
    last = mouth_opening(rgb([x for x in played if isinstance(x, rtc.VideoFrame)][-1]), box)
    opening = [mouth_opening(rgb(v), box) for v in after]
    assert last > OPEN  # cut with the mouth open
    assert opening[0] < min(last, OPEN), np.round(opening, 3)  # 40 ms: closing
    assert max(opening[1:]) < at_rest + CLOSED_MARGIN, np.round(opening, 3)  # 80 ms on: shut
    assert np.array_equal(samples(nxt)[:, 0], speech[: RATE // 2])
    assert re.fullmatch(r"V*(VA){13}E", kinds(nxt)), kinds(nxt)


def test_the_runner_plays_an_utterance_and_hears_of_an_interruption(avatar: Avatar, speech: np.ndarray) -> None:
    """The real AvatarRunner and AVSynchronizer (paced in real time) over a stand-in room: the agent
    side (QueueAudioOutput) hears "playback finished" at the utterance's length, and "interrupted"
    after a clear_buffer."""
    from livekit.agents.voice.avatar import AvatarRunner, QueueAudioOutput

    class Publication:
        async def wait_for_subscription(self) -> None:
            pass

    class Participant:
        def __init__(self) -> None:
            self.tracks: list = []

        async def publish_track(self, track, options) -> Publication:
            self.tracks.append(track)
            return Publication()

    class Room(rtc.EventEmitter):
        def __init__(self) -> None:
            super().__init__()
            self.local_participant = Participant()

        def isconnected(self) -> bool:
            return True

    pcm = speech[: RATE + 300]

    async def run() -> tuple:
        gen = FacetalkVideoGenerator(avatar, fps=FPS, sample_rate=RATE)
        agent = QueueAudioOutput(sample_rate=RATE)
        room = Room()
        runner = AvatarRunner(room, audio_recv=agent, video_gen=gen, options=gen.options)
        await runner.start()
        for frame in chunks(pcm, RATE, 20):
            await agent.capture_frame(frame)
        agent.flush()
        whole = await asyncio.wait_for(agent.wait_for_playout(), 20)
        for frame in chunks(speech, RATE, 20):
            await agent.capture_frame(frame)
        await asyncio.sleep(0.5)
        agent.clear_buffer()
        cut = await asyncio.wait_for(agent.wait_for_playout(), 20)
        await runner.aclose()
        await gen.aclose()
        return whole, cut, room.local_participant.tracks

    whole, cut, tracks = asyncio.run(run())
    assert not whole.interrupted and whole.playback_position == pytest.approx(len(pcm) / RATE)
    assert cut.interrupted and 0 < cut.playback_position < len(speech) / RATE
    assert sorted(t.name for t in tracks) == ["avatar_audio", "avatar_video"]


def test_without_livekit_the_import_names_the_extra() -> None:
    code = ("import sys; sys.modules['livekit'] = None\n"
            "try:\n    import facetalk.integrations.livekit\nexcept ImportError as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert 'pip install "facetalk[livekit]"' in out.stdout
    assert len(out.stdout.strip().splitlines()) == 1
