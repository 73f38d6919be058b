"""`POST /avatars/{id}/webrtc` end to end with an aiortc client on loopback (no browser).

A uvicorn server runs in a thread (its own event loop, as in production); the client
(stream.webrtc_client) sends the shipped voice as its audio track in real time, opens the control
data channel and keeps what comes back. The server never sheds frames here (its deadline is
generous), so frames can be counted; two live sessions at most, so the refusal can be reached.
"""

from __future__ import annotations

import asyncio
import fractions
import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from aiortc.mediastreams import MediaStreamError

from facetalk.media.audio import PcmResampler
from facetalk.safety.detect import detect
from facetalk.safety.verify import verify
from facetalk.stream.config import ServerConfig
from facetalk.stream.protocol import ProtocolError
from facetalk.stream.bench import in_process_server
from facetalk.stream.server import create_app
from facetalk.stream.webrtc import (AUDIO_LEAD_S, AUDIO_PTIME_S, BITRATE_STEPS, VP8_RENDERED, InOrderPackets,
                                    MediaClock, SpeechBuffer, SpeechTrack, _on_clock, _OnClockSender, bitrate_step,
                                    i420, parse_offer)
from facetalk.stream.webrtc_client import WebRTCClient, post_json

FPS = 25
MAX_SESSIONS = 2


def running(config: ServerConfig):
    """`facetalk serve`'s app under uvicorn in a thread: a context manager of (base URL, app)."""
    pytest.importorskip("uvicorn")
    return in_process_server(config)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, object]]:
    with running(ServerConfig(max_sessions=MAX_SESSIONS, workdir=tmp_path_factory.mktemp("serve"),
                              frame_deadline_s=60, max_lag_s=60)) as s:
        yield s


@pytest.fixture(scope="module")
def voice48(voice: np.ndarray) -> np.ndarray:
    """2.5 s of the shipped voice at WebRTC's 48 kHz."""
    return PcmResampler(16000, 48000).feed(np.asarray(voice[: int(2.5 * 16000)], np.float32))


def status(base: str) -> dict:
    with urllib.request.urlopen(base + "/status", timeout=10) as r:
        return json.loads(r.read())


def post(base: str, path: str, body: bytes) -> tuple[int, dict]:
    request = urllib.request.Request(base + path, body, {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def updates(received) -> list[dict]:
    """The server's answers to accepted control updates (the start message carries controls too)."""
    return [m["controls"] for m in received.messages if "controls" in m and "fps" not in m]


def wait_until(predicate, timeout_s: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


# -- the pieces, without a network ---------------------------------------------------------------

def test_parse_offer_checks_its_fields() -> None:
    offer = parse_offer({"sdp": "v=0\r\n", "type": "offer", "controls": {"emotion": "happy"}})
    assert offer.description.type == "offer" and offer.controls.emotion == "happy"
    for body, words in [([], "JSON object"), ({"sdp": "v=0", "type": "answer"}, 'type must be "offer"'),
                        ({"type": "offer"}, "sdp must be"), ({"sdp": "hi", "type": "offer"}, "v=0"), ({"sdp": "v=0", "type": "offer", "x": 1}, "unknown field"),
                        ({"sdp": "v=0", "type": "offer", "controls": {"distance": 9}}, "distance")]:
        with pytest.raises(ProtocolError, match=words):
            parse_offer(body)


def test_speech_buffer_reads_in_order_and_ends() -> None:
    async def run() -> list:
        buffer = SpeechBuffer()
        buffer.append(np.full(1500, 0.5, np.float32))
        first = await buffer.read(0, 960)
        reader = asyncio.ensure_future(buffer.read(960, 960))
        await asyncio.sleep(0.01)
        assert not reader.done()  # waits for sound not there yet
        buffer.append(np.zeros(1000, np.float32))
        second = await reader
        buffer.close()
        return [first, second, await buffer.read(1920, 960), await buffer.read(2880, 960)]

    first, second, last, after = asyncio.run(run())
    assert (first == 16384).all() and (second[:540] == 16384).all() and (second[540:] == 0).all()
    assert len(last) == 960 and after is None  # the tail is padded; past the end: nothing


def test_sound_packets_pass_at_once_in_order() -> None:
    from aiortc.rtp import RtpPacket

    buffer = InOrderPackets()
    passed = []
    for seq in (65534, 65535, 65535, 0, 65533, 2, 1, 3):  # a duplicate, a wrap, a late one, a gap
        packet = RtpPacket(sequence_number=seq, timestamp=seq * 960)
        packet._data = bytes([seq % 256])
        _, frame = buffer.add(packet)
        if frame is not None:
            passed.append(seq)
    assert passed == [65534, 65535, 0, 2, 3]  # nothing waits for a missing packet; nothing goes backwards


def test_media_clock_releases_both_tracks_from_one_time_and_follows_the_frames() -> None:
    async def run() -> MediaClock:
        clock = MediaClock(0.12, min_s=0.05)
        clock.begin(100.0)
        clock.begin(200.0)  # the first start stays
        return clock

    clock = asyncio.run(run())
    assert clock.due(0.0) == pytest.approx(100.12) and clock.due(1.0) == pytest.approx(101.12)
    for _ in range(50):  # frames ready 200 ms after their time: the delay goes up at once
        clock.adapt(0.2)
    assert clock.delay_s == pytest.approx(0.21)
    for _ in range(50):  # then fast ones: it comes down, a millisecond a frame
        clock.adapt(0.06)
    assert 0.15 < clock.delay_s < 0.21
    for _ in range(500):
        clock.adapt(0.01)
    assert clock.delay_s == pytest.approx(0.05)  # never below its floor


def test_the_sound_leaves_its_lead_before_the_frames_and_never_pauses_for_a_rise() -> None:
    """The sound of t leaves AUDIO_LEAD_S before the frame of t; when the frames' delay jumps up, the
    sound's release times keep their 20 ms pace (but for AUDIO_RISE), still ahead of the frames; when
    the delay falls, the sound follows at once (it is never sent after its frame)."""
    async def run() -> MediaClock:
        clock = MediaClock(0.1, min_s=0.04)
        clock.begin(100.0)
        return clock

    clock = asyncio.run(run())
    assert AUDIO_LEAD_S > 0.02
    released, k = [], 0

    def sound(frames: int) -> None:
        nonlocal k
        for _ in range(frames):
            t = k * AUDIO_PTIME_S
            released.append(clock.audio_due(t))
            assert released[-1] <= clock.due(t) - AUDIO_LEAD_S + 1e-9
            k += 1

    sound(10)
    assert released[-1] == pytest.approx(clock.due(9 * AUDIO_PTIME_S) - AUDIO_LEAD_S)
    for _ in range(50):  # frames 80 ms later than before: the frames' delay jumps up at once
        clock.adapt(0.17)
    assert clock.delay_s == pytest.approx(0.18)
    sound(100)
    gaps = np.diff(released)
    assert gaps.max() < AUDIO_PTIME_S + 0.001  # no pause: NetEq sees no jitter
    assert released[-1] < clock.due((k - 1) * AUDIO_PTIME_S) - AUDIO_LEAD_S - 0.03  # still catching up
    for _ in range(500):  # fast frames: the delay falls to its floor, and the sound with it
        clock.adapt(0.0)
    sound(1)
    assert released[-1] == pytest.approx(clock.due((k - 1) * AUDIO_PTIME_S) - AUDIO_LEAD_S)


def test_the_speech_track_releases_on_the_sounds_schedule_and_reports_the_media_clock(monkeypatch) -> None:
    from facetalk.stream import webrtc

    waits: list[float] = []
    real_sleep = asyncio.sleep

    async def sleep(s: float) -> None:
        waits.append(s)
        await real_sleep(0)

    monkeypatch.setattr(webrtc.asyncio, "sleep", sleep)

    async def run() -> tuple[float, float, float]:
        clock = MediaClock(0.1)
        now = time.monotonic()
        clock.begin(now)
        buffer = SpeechBuffer()
        buffer.append(np.zeros(48000, np.float32))
        track = SpeechTrack(clock, buffer)
        await track.recv()
        return now, clock.due(0.0), track.released_due

    now, due, reported = asyncio.run(run())
    assert reported == due == pytest.approx(now + 0.1)  # its sender report: the media clock
    assert waits and 0.1 - AUDIO_LEAD_S - 0.01 < waits[0] <= 0.1 - AUDIO_LEAD_S  # it leaves the lead early


@pytest.mark.parametrize("track_encodes", [False, True])
def test_the_sound_heard_at_a_time_is_the_sound_of_that_time(track_encodes: bool) -> None:
    """Through aiortc's Opus encoder and decoder, placed by RTP timestamp: a click pushed at session
    time t is heard at t (libopus's 6.5 ms lookahead is fed ahead, webrtc.OPUS_LOOKAHEAD), whether
    aiortc encodes the track's frames or, once handed aiortc's encoder, the track does."""
    import fractions

    from aiortc.codecs.opus import OpusDecoder, OpusEncoder
    from aiortc.jitterbuffer import JitterFrame
    from av import Packet

    click_at = 19200 + 480  # samples at 48 kHz: 0.41 s
    pcm = np.zeros(48000, np.float32)
    pcm[click_at:click_at + 48] = np.hanning(48) * 0.6

    async def run() -> np.ndarray:
        clock = MediaClock(0.0)
        clock.begin(time.monotonic() - 100)  # everything already due: no waiting
        buffer = SpeechBuffer()
        buffer.append(pcm)
        buffer.close()
        track, encoder, decoder = SpeechTrack(clock, buffer), OpusEncoder(), OpusDecoder()
        heard = np.zeros(len(pcm) + 960)
        for k in range(45):
            frame = await track.recv()
            assert frame.time_base == fractions.Fraction(1, 48000)
            assert isinstance(frame, Packet) == (track_encodes and k > 0)
            if isinstance(frame, Packet):  # what aiortc's sender does with a packet (OpusEncoder.pack)
                payloads, ts = encoder.pack(frame)
            else:
                payloads, ts = encoder.encode(frame)
                if track_encodes:  # aiortc made its encoder on the first frame: the sender hands it over
                    track.encoder = encoder
            assert ts == 960 * k
            for payload in payloads:
                for out in decoder.decode(JitterFrame(data=payload, timestamp=ts)):
                    x = out.to_ndarray().reshape(-1, len(out.layout.channels)).mean(1)
                    heard[ts:ts + len(x)] = x
        return heard

    heard = asyncio.run(run())
    peak = int(np.argmax(np.convolve(np.abs(heard), np.ones(48), "same")))
    assert abs(peak - (click_at + 24)) <= 24  # within half a millisecond


def test_sender_reports_pair_rtp_times_with_the_media_clock() -> None:
    from types import SimpleNamespace

    from aiortc import RTCRtpSender, clock

    async def run() -> tuple[RTCRtpSender, int, int]:
        sender = RTCRtpSender("video", SimpleNamespace(state="new"))
        track = SimpleNamespace(released_due=None)
        _on_clock(sender, track)
        before = sender._RTCRtpSender__ntp_timestamp
        track.released_due = time.monotonic() - 0.05  # the frame being sent was due 50 ms ago
        now = clock.current_ntp_time()
        sender._RTCRtpSender__ntp_timestamp = now  # as aiortc does after each packet
        return sender, before, now - sender._RTCRtpSender__ntp_timestamp

    sender, before, back = asyncio.run(run())
    assert isinstance(sender, _OnClockSender) and before == 0
    assert 0.045 < back / 2**32 < 0.06


def test_sender_reports_of_sound_sent_ahead_carry_its_time_on_the_media_clock() -> None:
    """The sound leaves AUDIO_LEAD_S before its time on the media clock: its pair is moved forward,
    so the browser still reads it as the sound of that time (and plays it with its frame)."""
    from types import SimpleNamespace

    from aiortc import RTCRtpSender, clock

    async def run() -> int:
        sender = RTCRtpSender("audio", SimpleNamespace(state="new"))
        track = SimpleNamespace(released_due=None)
        _on_clock(sender, track)
        track.released_due = time.monotonic() + AUDIO_LEAD_S  # the packet being sent is due later
        now = clock.current_ntp_time()
        sender._RTCRtpSender__ntp_timestamp = now
        return sender._RTCRtpSender__ntp_timestamp - now

    ahead = asyncio.run(run()) / 2**32
    assert AUDIO_LEAD_S - 0.01 < ahead <= AUDIO_LEAD_S


def test_the_vp8_bitrate_moves_in_steps() -> None:
    """A browser's estimate wandering between 0.3 and 1.6 Mbit/s for 90 s: aiortc would rebuild its
    encoder on every move of more than 10 %; held to steps it rebuilds a few times, never encodes
    above what the link carries, and drops at once when the estimate does."""
    rng = np.random.default_rng(0)
    estimates = np.clip(np.exp(np.cumsum(rng.normal(0, 0.08, 90)) + np.log(700_000)), 300_000, 1_600_000).astype(int)
    current, rebuilds, raw = 500_000, 0, 0
    last_raw = 500_000
    for estimate in estimates:
        step = bitrate_step(current, int(estimate))
        assert step in BITRATE_STEPS and (step <= estimate or step == BITRATE_STEPS[0])
        rebuilds += abs(step - current) / current > 0.1
        raw += abs(min(max(estimate, 250_000), 1_500_000) - last_raw) / last_raw > 0.1
        last_raw = min(max(estimate, 250_000), 1_500_000) if abs(estimate - last_raw) / last_raw > 0.1 else last_raw
        current = step
    assert raw >= 10 and rebuilds <= raw / 2
    assert bitrate_step(1_000_000, 900_000) == 700_000  # down at once
    assert bitrate_step(700_000, 1_050_000) == 700_000 and bitrate_step(700_000, 1_100_000) == 1_000_000


def test_a_rebuilt_encoder_hands_its_freed_heap_back(monkeypatch: pytest.MonkeyPatch) -> None:
    from av import VideoFrame

    from facetalk.stream import webrtc

    calls = []
    monkeypatch.setattr(webrtc, "release_freed_heap", lambda: calls.append(1))
    encoder = webrtc._SteppedVp8Encoder()
    frame = VideoFrame.from_ndarray(np.zeros((64, 64, 3), np.uint8), format="rgb24")
    frame.pts, frame.time_base = 0, fractions.Fraction(1, 90000)
    encoder.encode(frame)
    encoder.encode(frame)
    assert calls == []  # made once, not rebuilt
    encoder.target_bitrate = 1_500_000
    encoder.encode(frame)
    assert calls == [1] and encoder.target_bitrate == 1_000_000  # the highest step 1.5 Mbit/s clears by 10 %
    webrtc.release_freed_heap()  # and the real one runs (a no-op off glibc)



def _picture(h: int, w: int) -> np.ndarray:
    """A smooth RGB picture with an edge, like a rendered face against its background."""
    y, x = np.mgrid[:h, :w].astype(np.float32)
    image = np.stack([x / w * 255, y / h * 255, np.full_like(x, 128)], -1)
    image[h // 4:h // 2, w // 4:w // 2] = (200, 40, 90)
    return image.astype(np.uint8)


def test_frames_reach_the_encoder_as_pyav_would_convert_them() -> None:
    from av import VideoFrame

    for h, w in ((512, 512), (256, 256), (34, 33)):
        image = _picture(h, w)
        frame = i420(image)
        reference = VideoFrame.from_ndarray(image, format="rgb24").reformat(format="yuv420p")
        assert frame.format.name == "yuv420p" and (frame.width, frame.height) == (w, h)
        if w % 2 == 0:  # the same colour matrix and range: the same luma, the picture back within a level or two
            luma, ref_luma = frame.to_ndarray()[:h].astype(int), reference.to_ndarray()[:h].astype(int)
            assert np.abs(luma - ref_luma).max() <= 1
            assert np.abs(frame.to_ndarray(format="rgb24").astype(int) - image).mean() < 2.5


class _Noted:
    """A codec context that notes what is set on it (PyAV keeps no options once the codec opens)."""

    def __init__(self, codec: object) -> None:
        object.__setattr__(self, "_codec", codec)
        object.__setattr__(self, "settings", {})

    def __setattr__(self, name: str, value: object) -> None:
        self.settings[name] = value
        setattr(self._codec, name, value)

    def __getattr__(self, name: str) -> object:
        return getattr(self._codec, name)


def test_the_vp8_encoder_is_aiortcs_set_up_for_rendered_frames(monkeypatch: pytest.MonkeyPatch) -> None:
    from types import SimpleNamespace

    import av
    from aiortc.codecs import vpx
    from av import VideoFrame

    from facetalk.stream import webrtc

    made: list[_Noted] = []

    def create(*args: str) -> _Noted:
        made.append(_Noted(av.CodecContext.create(*args)))
        return made[-1]

    noting = SimpleNamespace(CodecContext=SimpleNamespace(create=create), video=av.video)
    monkeypatch.setattr(vpx, "av", noting)
    monkeypatch.setattr(webrtc, "av", noting)
    frame = VideoFrame.from_ndarray(_picture(64, 64), format="rgb24")
    frame.pts, frame.time_base = 0, fractions.Fraction(1, 90000)
    vpx.Vp8Encoder().encode(frame)
    payloads, _ = webrtc._SteppedVp8Encoder().encode(frame)
    theirs, ours = (m.settings for m in made)
    assert payloads and len(made) == 2  # ours made one encoder, which aiortc's encode() kept and used
    assert {**theirs["options"], **VP8_RENDERED} == ours["options"]
    assert all(theirs["options"][k] != v for k, v in VP8_RENDERED.items())
    assert {k: v for k, v in theirs.items() if k != "options"} == {k: v for k, v in ours.items() if k != "options"}



def test_the_clients_voice_goes_as_the_opus_packets_aiortc_would_make_live(voice48: np.ndarray) -> None:
    """Encoded up front (webrtc_client.VoiceTrack): one packet each 20 ms, stamped as aiortc stamps
    them, that decode to the voice and then to silence."""
    from aiortc.codecs.opus import OpusDecoder
    from aiortc.jitterbuffer import JitterFrame

    from facetalk.stream.webrtc_client import VoiceTrack

    voice = voice48[:48000]

    async def run(track: VoiceTrack, n: int) -> list:
        return [await track.recv() for _ in range(n)]

    track = VoiceTrack(voice)
    packets = asyncio.run(run(track, 60))
    assert [p.pts for p in packets] == [960 * k for k in range(60)] and track.done
    decoder = OpusDecoder()
    heard = np.concatenate([f.to_ndarray().reshape(-1, 2).mean(1) for k, p in enumerate(packets)
                            for f in decoder.decode(JitterFrame(bytes(p), 960 * k))]) / 32768
    lag = max(range(960), key=lambda d: float(np.dot(heard[d:d + 48000], voice)))  # Opus's delay
    assert lag < 960 and np.corrcoef(heard[lag:lag + 48000], voice)[0, 1] > 0.9  # the voice, in order
    assert np.sqrt(np.mean(heard[48000 + lag + 960:] ** 2)) < 0.003  # then silence

    cut = VoiceTrack(voice, silence_after=False)
    asyncio.run(run(cut, 5))
    assert cut.cut() == pytest.approx(0.1) and cut.done
    with pytest.raises(MediaStreamError):  # no silence after it: the track ends where the voice was cut
        asyncio.run(run(cut, 1))

# -- end to end ------------------------------------------------------------------------------------

def test_voice_in_face_and_sound_out_with_a_recording(server, voice48: np.ndarray, tmp_path: Path) -> None:
    base, app = server
    seconds = len(voice48) / 48000

    async def run() -> tuple[WebRTCClient, dict, list[int]]:
        client = WebRTCClient(base, voice=voice48)
        await client.connect()
        prefetch = [type(t.receiver._RTCRtpReceiver__jitter_buffer).__name__  # see webrtc._no_hold
                    for peer in app.state.facetalk.webrtc.peers for t in peer.pc.getTransceivers()
                    if t.kind == "audio"]
        prefetch += sorted(type(s).__name__ for peer in app.state.facetalk.webrtc.peers  # see webrtc._on_clock
                           for s in peer.pc.getSenders())
        while not client.voice.done:
            await asyncio.sleep(0.05)
        prefetch += [type(s._RTCRtpSender__encoder).__name__ for peer in app.state.facetalk.webrtc.peers
                     for s in peer.pc.getSenders() if s.kind == "video"]  # see webrtc._SteppedVp8Encoder
        prefetch += [type(peer.audio.encoder).__name__ for peer in app.state.facetalk.webrtc.peers]  # SpeechTrack
        await asyncio.sleep(0.3)
        end = await client.end()
        await asyncio.sleep(0.3)  # the last frames are released after the end message
        await client.close()
        return client, end, prefetch

    client, end, prefetch = asyncio.run(run())
    assert prefetch == ["InOrderPackets", "_OnClockSender", "_OnClockSender", "_SteppedVp8Encoder", "OpusEncoder"]
    received = client.received
    start = received.messages[0]
    assert start["fps"] == FPS and start["size"] == 512 and start["controls"]["emotion"] == "neutral"
    assert received.first("sound") is not None  # where the client's sound starts on the session's clock
    # the session runs at real time from the connection: the voice plus the silence around it
    assert end["seconds"] >= seconds and abs(end["frames"] - end["seconds"] * FPS) <= 2
    assert end["dropped"] == 0 and len(received.frames) >= end["frames"] - end["skipped"] - 3
    pts = [p for p, _, _ in received.frames]
    assert pts == sorted(pts) and pts[0] == 0
    assert all(p % 3600 == 0 for p in pts)  # frame i at i/25 s on the 90 kHz clock
    images = [img for _, _, img in received.frames]
    assert all(img.shape == (512, 512, 3) for img in images)
    assert min(float(img.std()) for img in images) > 20  # a face, not a blank screen
    assert np.abs(images[20].astype(int) - images[50].astype(int)).mean() > 1  # it moves
    assert detect(images[::2]).found  # the watermark survives VP8

    # the sound comes back: 20 ms frames over the session, the voice loud where it was spoken
    audio = np.concatenate([a for _, _, a in received.audio]).astype(np.float32) / 32768
    assert len(audio) / 48000 == pytest.approx(end["seconds"], abs=0.3)
    at = received.first("sound")["sound"]["at"]
    spoken = audio[int(at * 48000):int((at + seconds) * 48000)]
    assert np.sqrt(np.mean(spoken**2)) > 0.02
    after = audio[int((at + seconds + 0.1) * 48000):]
    assert len(after) > 4800 and np.sqrt(np.mean(after**2)) < 0.005  # the client's silence after its voice

    with urllib.request.urlopen(base + end["recording"], timeout=30) as r:
        (tmp_path / "rec.mp4").write_bytes(r.read())
    verdict = verify(tmp_path / "rec.mp4")
    assert verdict.detection.found and verdict.provenance.is_facetalk
    assert wait_until(lambda: status(base)["live_sessions"] == 0)


def test_a_client_that_decodes_nothing_still_sees_everything_on_the_wire(server, voice48: np.ndarray) -> None:
    """The bench's clients (decode=False): every frame and sound packet noted as it arrives, none decoded."""
    base, _ = server

    async def run() -> tuple[WebRTCClient, dict, list[str]]:
        client = WebRTCClient(base, voice=voice48[:48000], wire=True, decode=False)
        await client.connect()
        buffers = [type(t.receiver._RTCRtpReceiver__jitter_buffer).__name__ for t in client.pc.getTransceivers()]
        while not client.voice.done:
            await asyncio.sleep(0.05)
        end = await client.end()
        await asyncio.sleep(0.3)
        await client.close()
        return client, end, buffers

    client, end, buffers = asyncio.run(run())
    received = client.received
    assert buffers == ["_Dropped", "_Dropped"]  # see webrtc_client._undecoded
    assert received.frames == [] and received.audio == []
    video = {ts for kind, ts, _, _ in received.wire if kind == "video"}
    sound = {ts for kind, ts, _, _ in received.wire if kind == "audio"}
    assert len(video) >= end["frames"] - end["skipped"] - 3
    assert len(sound) >= 50 * end["seconds"] - 10  # 20 ms packets over the session
    assert received.first("sound") is not None


def test_controls_on_the_data_channel_change_the_face(server) -> None:
    """Silence only (a muted microphone): the face listens, nearly still, until the distance changes."""
    base, _ = server

    async def run() -> tuple[WebRTCClient, float]:
        client = WebRTCClient(base, voice=np.zeros(0, np.float32))
        await client.connect()
        await client.wait_for(lambda r: len(r.frames) >= 30)
        client.send({"controls": {"distance": 7}})  # refused: the session goes on
        client.send({"hello": 1})
        client.send({"controls": {"distance": 1.6}})
        await client.wait_for(lambda r: bool(updates(r)))
        changed_at = len(client.received.frames)
        await client.wait_for(lambda r: len(r.frames) >= changed_at + 20)
        await client.end()
        await client.close()
        return client, changed_at

    client, changed_at = asyncio.run(run())
    errors = [m["error"] for m in client.received.messages if "error" in m]
    assert errors[0] == "distance must be within 0.5..2, got 7.0" and "controls" in errors[1]
    assert updates(client.received)[0]["distance"] == 1.6
    frames = client.received.frames
    at = frames[changed_at - 1][0] / 90000  # the last frame before the update was applied
    before = [img.astype(np.float32) for pts, _, img in frames if at - 0.3 <= pts / 90000 <= at]
    after = next(img.astype(np.float32) for pts, _, img in frames if pts / 90000 >= at + 0.6)  # ramp: 0.3 s
    still = np.abs(before[0] - before[-1]).mean()
    moved = np.abs(before[-1] - after).mean()
    print(f"listening face: {still:.2f} grey levels in 0.3 s; after the distance change: {moved:.2f}")
    assert moved > 3 * still and moved > 4, (still, moved)


def test_interrupt_drops_the_sound_not_yet_heard(tmp_path: Path, voice48: np.ndarray) -> None:
    """A server that sends its media 0.4 s after the sound came in: time for the client to stop its
    voice, let what is in flight land, then interrupt, with 0.2 s of voice still to be heard."""
    rms = lambda x: float(np.sqrt(np.mean(x**2))) if len(x) else 0.0  # noqa: E731
    frame = 960  # 20 ms at 48 kHz
    # cut the voice where its last 240 ms were loud: that is what the interrupt must keep unheard
    cut = next(k for k in range(50, len(voice48) // frame) if rms(voice48[(k - 12) * frame:k * frame]) > 0.05)

    async def run(base: str) -> tuple[WebRTCClient, float]:
        client = WebRTCClient(base, voice=voice48)
        await client.connect()
        while len(client.voice.sent) < cut:
            await asyncio.sleep(0.002)
        sent = client.voice.cut()  # the user barges in: the voice stops here...
        await asyncio.sleep(0.1)
        client.send({"type": "interrupt"})  # ...and what the avatar has not said yet is dropped
        await client.wait_for(lambda r: r.first("interrupted") is not None)
        await asyncio.sleep(0.6)
        await client.end()
        await client.close()
        return client, sent

    with running(ServerConfig(max_sessions=1, workdir=tmp_path, webrtc_delay_s=0.4, webrtc_min_delay_s=0.4, record=False,
                              frame_deadline_s=60, max_lag_s=60)) as (base, _):
        client, sent = asyncio.run(run(base))
    received = client.received
    at = received.first("interrupted")["interrupted"]["at"]
    sound = received.first("sound")["sound"]
    shift = sound["at"] - sound["input"]  # session time minus the client's time
    audio = np.zeros(max(p for p, _, _ in received.audio) + frame, np.float32)
    for p, _, a in received.audio:  # placed by their pts: a packet lost on the way shifts nothing
        audio[p:p + len(a)] = a / 32768
    heard = lambda a, b: rms(audio[int(a * 48000):int(b * 48000)])  # noqa: E731  (session times)
    dropped = (at + 0.04, sent + shift)  # Opus delays its sound by a few ms
    assert dropped[1] - dropped[0] >= 0.15, (at, sent + shift)
    assert heard(sound["at"], at) > 0.02  # the voice was heard up to the interrupt
    original = rms(voice48[int((dropped[0] - shift) * 48000):int((dropped[1] - shift) * 48000)])
    assert original > 0.02 and heard(*dropped) < 0.1 * original, (original, heard(*dropped))
    assert received.first("end")["frames"] >= 25 * (sent + shift + 0.5)  # frames kept coming


def test_bad_offers_get_one_line_and_the_server_stays_up(server) -> None:
    base, _ = server
    path = "/avatars/default/webrtc"
    cases = [(b"{not json", 400, "JSON object"), (b'{"sdp": "hello", "type": "offer"}', 422, "v=0"),
             (b'{"sdp": "v=0\\r\\nm=video x y\\r\\n", "type": "offer"}', 400, "not SDP"),
             (b'{"sdp": "v=0\\r\\nm=video 9 UDP/TLS/RTP/SAVPF 96\\r\\n", "type": "offer"}', 400, "ICE"),
             (b'{"sdp": "v=0", "type": "pranswer"}', 422, 'type must be "offer"'),
             (json.dumps({"sdp": "v=0", "type": "offer", "controls": {"emotion": 3}}).encode(), 422, "emotion")]
    for body, code, words in cases:
        got, answer = post(base, path, body)
        assert got == code and words in answer["detail"] and "\n" not in answer["detail"], (body, answer)
    got, answer = post(base, "/avatars/nobody/webrtc", b'{"sdp": "v=0", "type": "offer"}')
    assert got == 404 and "no avatar" in answer["detail"]

    async def audio_only() -> tuple[int, dict]:
        from aiortc import RTCPeerConnection

        pc = RTCPeerConnection()
        pc.addTransceiver("audio")
        await pc.setLocalDescription(await pc.createOffer())
        try:
            return await asyncio.to_thread(post, base, path, json.dumps(
                {"sdp": pc.localDescription.sdp, "type": "offer"}).encode())
        finally:
            await pc.close()

    got, answer = asyncio.run(audio_only())
    assert got == 400 and "must receive video" in answer["detail"]
    assert status(base)["live_sessions"] == 0  # the refused offers hold no slot


def test_sessions_are_admitted_as_live_ones_and_closing_frees_the_slot(server) -> None:
    base, _ = server

    async def run() -> tuple[str, int]:
        clients = [WebRTCClient(base) for _ in range(MAX_SESSIONS)]
        for c in clients:
            await c.connect()
        extra = WebRTCClient(base)
        try:
            await extra.connect()
            refusal = ""
        except urllib.error.HTTPError as exc:
            refusal = f"{exc.code} {json.loads(exc.read())['detail']}"
        await extra.close()
        running = status(base)["live_sessions"]
        assert status(base)["webrtc_sessions"] == MAX_SESSIONS
        await clients[0].close()  # leaves without ending: its slot is freed, its recording dropped
        freed = await asyncio.to_thread(wait_until, lambda: status(base)["live_sessions"] == MAX_SESSIONS - 1)
        assert freed, status(base)
        again = WebRTCClient(base)
        await again.connect()
        for c in clients[1:] + [again]:
            await c.close()
        return refusal, running

    refusal, running = asyncio.run(run())
    assert running == MAX_SESSIONS
    assert refusal.startswith("503 the server is busy"), refusal
    assert wait_until(lambda: status(base)["live_sessions"] == 0)


def test_the_page_gets_the_ice_servers_with_the_avatar(tmp_path: Path) -> None:
    """Behind NAT both sides need the same TURN server: the one the server uses is handed out."""
    from fastapi.testclient import TestClient

    from facetalk.stream.config import IceServer

    config = ServerConfig(warm=False, workdir=tmp_path, ice_servers=(
        IceServer("stun:stun.example.org:3478"), IceServer("turn:turn.example.org:3478", "user", "secret")))
    with TestClient(create_app(config)) as client:
        avatar = client.get("/avatars/default").json()
    assert avatar["webrtc"] == "/avatars/default/webrtc"
    assert avatar["ice_servers"] == [{"urls": "stun:stun.example.org:3478"},
                                     {"urls": "turn:turn.example.org:3478", "username": "user", "credential": "secret"}]


def test_the_server_takes_no_picture(server) -> None:
    """An offer that would send a camera too gets a send-only video answer: nothing to decode."""
    base, _ = server

    async def run() -> str:
        from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription, VideoStreamTrack

        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        pc.addTrack(VideoStreamTrack())  # send and receive video
        pc.createDataChannel("control")
        await pc.setLocalDescription(await pc.createOffer())
        answer = await asyncio.to_thread(post_json, base + "/avatars/default/webrtc",
                                         {"sdp": pc.localDescription.sdp, "type": "offer"})
        await pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], answer["type"]))
        await asyncio.sleep(0.5)
        await pc.close()
        return answer["sdp"]

    sdp = asyncio.run(run())
    video = sdp[sdp.index("m=video"):]
    assert "a=sendonly" in video.split("m=", 2)[1]
    assert wait_until(lambda: status(base)["live_sessions"] == 0)


def test_the_bench_runs_its_clients_on_the_servers_event_loop() -> None:
    from facetalk.stream.bench import run_clients

    async def loop_name() -> str:
        return type(asyncio.get_running_loop()).__module__

    uvloop = pytest.importorskip("uvloop")
    assert run_clients(loop_name()).startswith(uvloop.__name__)
