"""`facetalk serve` through FastAPI's TestClient: avatars, renders, the live WebSocket, recordings.

One app (warmed once) serves the module; its limits are small (2 live sessions, fixed, 1 MB
photos) so the refusals can be reached cheaply, and it never sheds frames. Audio is 2-2.5 s of the shipped voice.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from fastapi.testclient import TestClient
from helpers import decoded_frames
from PIL import Image
from starlette.websockets import WebSocketDisconnect

from facetalk.safety.verify import verify
from facetalk.media.video import probe_video
from facetalk.motion.controls import Controls
from facetalk.stream.config import MB, ServerConfig
from facetalk.stream.protocol import ProtocolError, decode_frame, encode_frame, image_kind, updated_controls
from facetalk.stream.server import create_app

RATE = 16000
FPS = 25
MAX_SESSIONS = 2


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("serve")


@pytest.fixture(scope="module")
def client(workdir: Path) -> Iterator[TestClient]:
    # Frames are compared one by one here, so none may be shed: on a busy test machine two sessions
    # sent 2 s of sound at once can fall behind real time (shedding: tests/test_overload.py).
    config = ServerConfig(max_sessions=MAX_SESSIONS, max_photo_bytes=1 * MB, max_audio_bytes=1 * MB,
                          max_avatars=2, idle_timeout_s=10, workdir=workdir, frame_deadline_s=60, max_lag_s=60)
    with TestClient(create_app(config)) as c:
        yield c


@pytest.fixture(scope="module")
def pcm(voice: np.ndarray) -> bytes:
    """2.5 s of the shipped voice as int16 little-endian bytes."""
    return (np.asarray(voice[: int(2.5 * RATE)]) * 32767).astype("<i2").tobytes()


def upload_photo(client: TestClient, data: bytes, name: str = "photo.png"):
    return client.post("/avatars", files={"photo": (name, data, "application/octet-stream")})


def png_bytes(rgb: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")
    return buf.getvalue()


def live_messages(ws, until_end: bool = True) -> tuple[list[tuple[int, float, np.ndarray]], list[dict]]:
    """Frames and text messages until the server's end message (or its close)."""
    frames, texts = [], []
    while True:
        message = ws.receive()
        if message["type"] == "websocket.close":
            return frames, texts
        if message.get("bytes") is not None:
            frames.append(decode_frame(message["bytes"]))
        else:
            texts.append(json.loads(message["text"]))
            if until_end and texts[-1].get("end"):
                return frames, texts


def stream_pcm(ws, pcm: bytes, sizes: tuple[int, ...] = (640, 1400, 322)) -> None:
    """Send PCM in chunks of varying byte sizes (all even), as a real client's would vary."""
    i = k = 0
    while i < len(pcm):
        n = sizes[k % len(sizes)]
        ws.send_bytes(pcm[i: i + n])
        i, k = i + n, k + 1


def wait_until(predicate, timeout: float = 5.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def solo_frames(avatar, pcm: bytes, controls: Controls) -> list[np.ndarray]:
    session = avatar.stream()
    session.set_controls(controls)
    return [f.image for f in session.push(pcm) + session.close()]


# -- wire formats ---------------------------------------------------------------------------------

def test_frame_message_round_trip() -> None:
    rgb = np.zeros((64, 64, 3), np.uint8)
    rgb[:, :32] = (200, 30, 30)
    index, t, back = decode_frame(encode_frame(7, 0.28, rgb))
    assert (index, t) == (7, 0.28)
    assert np.abs(back.astype(int) - rgb).mean() < 3
    with pytest.raises(ProtocolError):
        decode_frame(b"\x00" * 12)


def test_control_updates_are_checked() -> None:
    c = updated_controls(Controls(), {"gaze": [10, -5], "emotion": "happy:0.5", "blink": False})
    assert c.gaze == (10.0, -5.0) and c.emotion == "happy:0.5" and not c.blink and c.distance == 1.0
    for bad, words in [({"distance": 9}, "distance must be within"), ({"speed": 1}, "unknown control 'speed'"),
                       ({"gaze": [1]}, "gaze must be [yaw, pitch]"), ({"blink": 1}, "blink must be true or false"),
                       ({"distance": "near"}, "distance must be a number"), ([1, 2], "must be a JSON object"),
                       ({"emotion": "bored"}, "bored")]:
        with pytest.raises(ProtocolError, match=None) as info:
            updated_controls(Controls(), bad)
        assert words in str(info.value) and "\n" not in str(info.value)


def test_image_kind_by_magic_bytes() -> None:
    assert image_kind(b"\xff\xd8\xff\xe0" + bytes(8)) == "jpeg"
    assert image_kind(b"\x89PNG\r\n\x1a\n" + bytes(4)) == "png"
    assert image_kind(b"RIFF\x00\x00\x00\x00WEBP") == "webp"
    assert image_kind(b"GIF89a......") == "gif"  # the CLI's list: see test_hostile's image types
    assert image_kind(b"\x00\x00\x01\x00" + bytes(8)) is None  # an icon


# -- avatars ---------------------------------------------------------------------------------------

def test_default_avatar_and_preview(client: TestClient) -> None:
    r = client.post("/avatars", data={"default": "true"})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["id"] == "default" and body["size"] == 512 and body["live"] == "/avatars/default/live"
    r = client.get(body["preview"])
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    assert cv2.imdecode(np.frombuffer(r.content, np.uint8), cv2.IMREAD_COLOR).shape == (512, 512, 3)


def test_upload_portrait(client: TestClient, portrait_path: Path) -> None:
    r = upload_photo(client, portrait_path.read_bytes(), "portrait.png")
    assert r.status_code == 201, r.text
    avatar_id = r.json()["id"]
    assert avatar_id != "default"
    assert client.get(f"/avatars/{avatar_id}").json()["faces"] == 1
    assert client.get(f"/avatars/{avatar_id}/preview.jpg").status_code == 200


def test_avatar_cache_is_bounded(client: TestClient, portrait_path: Path) -> None:
    """max_avatars=2: a third upload evicts the least recently used; the default stays."""
    ids = [upload_photo(client, portrait_path.read_bytes()).json()["id"] for _ in range(3)]
    assert client.get(f"/avatars/{ids[0]}").status_code == 404
    assert "POST /avatars" in client.get(f"/avatars/{ids[0]}").json()["detail"]
    assert all(client.get(f"/avatars/{i}").status_code == 200 for i in (*ids[1:], "default"))


@pytest.mark.parametrize("data, name", [(b"just some text, not a picture", "notes.txt"),
                                        (b"\x00\x00\x01\x00" + bytes(100), "favicon.ico")])
def test_not_an_image_is_415(client: TestClient, data: bytes, name: str) -> None:
    r = upload_photo(client, data, name)
    assert r.status_code == 415
    assert r.json()["detail"] == (f"'{name}' is not a photo in a format facetalk reads; send JPEG, PNG or WebP "
                                  "(GIF, BMP and TIFF are read too)")


def test_too_large_photo_is_413(client: TestClient) -> None:
    big = b"\x89PNG\r\n\x1a\n" + bytes(int(1.2 * MB))
    r = upload_photo(client, big)
    assert r.status_code == 413 and "limit is 1 MB" in r.json()["detail"]


def test_too_large_chunked_upload_is_413(client: TestClient) -> None:
    """No Content-Length (chunked): the body is cut off as it grows past the limit."""
    boundary = "facetalkboundary"
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"photo\"; filename=\"big.png\"\r\n"
            "Content-Type: image/png\r\n\r\n").encode()

    def body() -> Iterator[bytes]:
        yield head
        for _ in range(20):
            yield bytes(100_000)
        yield f"\r\n--{boundary}--\r\n".encode()

    r = client.post("/avatars", content=body(), headers={"content-type": f"multipart/form-data; boundary={boundary}"})
    assert r.status_code == 413 and "too large" in r.json()["detail"]


def test_photo_without_a_face_is_422(client: TestClient) -> None:
    sky = np.zeros((300, 400, 3), np.uint8)
    sky[:] = np.linspace(90, 200, 400)[None, :, None].astype(np.uint8)
    r = upload_photo(client, png_bytes(sky), "sky.png")
    assert r.status_code == 422
    detail = r.json()["detail"]
    assert "face" in detail and "\n" not in detail


def test_corrupt_photo_names_the_upload_not_a_temp_file(client: TestClient, portrait_path: Path) -> None:
    data = portrait_path.read_bytes()[:5000]  # a PNG cut short
    r = upload_photo(client, data, "cut.png")
    assert r.status_code == 422
    detail = r.json()["detail"]
    assert "cut.png" in detail and "/tmp" not in detail and "partial" not in detail


def test_missing_fields_give_one_line(client: TestClient) -> None:
    r = client.post("/avatars")
    assert r.status_code == 422
    assert r.json()["detail"] == "send either a photo (multipart field 'photo') or default=true"
    r = client.post("/avatars/default/generate")
    assert r.status_code == 422 and isinstance(r.json()["detail"], str) and "audio" in r.json()["detail"]


# -- file renders ----------------------------------------------------------------------------------

def test_generate_mp4(client: TestClient, voice: np.ndarray, wav_writer, tmp_path: Path) -> None:
    wav = wav_writer("two_seconds.wav", voice[: 2 * RATE])
    with open(wav, "rb") as f:
        r = client.post("/avatars/default/generate", files={"audio": ("two_seconds.wav", f, "audio/wav")},
                        data={"controls": json.dumps({"emotion": "happy:0.6", "gaze": [5, 0]})})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "video/mp4" and r.headers["x-facetalk-frames"] == "50"
    out = tmp_path / "out.mp4"
    out.write_bytes(r.content)
    info = probe_video(out)
    assert (info.width, info.height, info.n_frames, info.has_audio) == (512, 512, 50, True)
    assert len(decoded_frames(out)) == 50


def test_generate_refuses_bad_input(client: TestClient, voice: np.ndarray, wav_writer) -> None:
    wav = wav_writer("v.wav", voice[:RATE]).read_bytes()
    r = client.post("/avatars/default/generate", files={"audio": ("v.wav", wav)}, data={"controls": '{"distance": 5}'})
    assert r.status_code == 422 and r.json()["detail"] == "controls: distance must be within 0.5..2, got 5.0"
    r = client.post("/avatars/default/generate", files={"audio": ("v.wav", wav)}, data={"controls": "{oops"})
    assert r.status_code == 422 and "not valid JSON" in r.json()["detail"]
    r = client.post("/avatars/default/generate", files={"audio": ("song.mp3", b"this is no audio" * 50)})
    assert r.status_code == 415 and "'song.mp3'" in r.json()["detail"] and "/tmp" not in r.json()["detail"]
    r = client.post("/avatars/default/generate", files={"audio": ("long.wav", bytes(int(1.5 * MB)))})
    assert r.status_code == 413
    r = client.post("/avatars/nobody/generate", files={"audio": ("v.wav", wav)})
    assert r.status_code == 404


# -- the live WebSocket --------------------------------------------------------------------------

def test_live_stream_frames_controls_and_recording(client: TestClient, pcm: bytes, tmp_path: Path) -> None:
    seconds = len(pcm) / 2 / RATE
    with client.websocket_connect("/avatars/default/live") as ws:
        start = ws.receive_json()
        assert start["fps"] == FPS and start["size"] == 512 and start["sample_rate"] == RATE
        half = len(pcm) // 2 & ~1
        stream_pcm(ws, pcm[:half])
        ws.send_text(json.dumps({"controls": {"emotion": "happy", "gaze": [15, 5]}}))
        ws.send_text(json.dumps({"controls": {"distance": 7}}))  # refused; the stream goes on
        ws.send_text("hello")
        stream_pcm(ws, pcm[half:])
        ws.send_text(json.dumps({"end": True}))
        frames, texts = live_messages(ws)
    assert texts[0]["controls"]["emotion"] == "happy" and texts[0]["controls"]["gaze"] == [15.0, 5.0]
    assert texts[1] == {"error": "distance must be within 0.5..2, got 7.0"}
    assert "JSON" in texts[2]["error"]
    end = texts[-1]
    assert end["end"] is True and end["frames"] == len(frames) and end["seconds"] == pytest.approx(seconds)
    assert abs(len(frames) - seconds * FPS) <= 1
    assert [f[0] for f in frames] == list(range(len(frames)))
    assert all(t == pytest.approx(i / FPS) for i, t, _ in frames)
    assert all(img.shape == (512, 512, 3) for _, _, img in frames)
    assert np.abs(frames[10][2].astype(int) - frames[40][2].astype(int)).mean() > 1  # it moves

    r = client.get(end["recording"])
    assert r.status_code == 200 and r.headers["content-type"] == "video/mp4"
    out = tmp_path / "recording.mp4"
    out.write_bytes(r.content)
    info = probe_video(out)
    assert (info.width, info.height, info.n_frames, info.has_audio) == (512, 512, len(frames), True)
    assert info.audio_duration == pytest.approx(len(frames) / FPS, abs=0.1)
    verdict = verify(out)  # the recording is marked as every facetalk output is: watermark and tags
    assert verdict.detection.found and verdict.provenance.is_facetalk
    assert verdict.detection.payload is not None and verdict.detection.payload.hex_id == verdict.provenance.watermark_id
    assert client.get(end["recording"]).status_code == 404  # offered once


def test_live_odd_length_chunks_are_carried_over(client: TestClient, pcm: bytes) -> None:
    """Binary messages of any length, odd ones too: a byte left over completes the next message's
    first sample (issue 15: odd chunks were refused and the session yielded no frames)."""
    data = pcm[: RATE]  # 0.5 s
    with client.websocket_connect("/avatars/default/live") as ws:
        ws.receive_json()
        ws.send_bytes(b"\x01")  # half a sample
        ws.send_bytes(b"")
        ws.send_bytes(b"\x02")
        stream_pcm(ws, data, sizes=(641, 1399, 3, 1, 321))
        ws.send_text(json.dumps({"end": True}))
        frames, texts = live_messages(ws)
    assert not [t for t in texts if "error" in t]
    assert len(frames) == 13 and texts[-1]["seconds"] == 0.5  # 12.5 frames of sound (+ one sample)
    alone = solo_frames(client.app.state.facetalk.avatars.get("default").avatar, b"\x01\x02" + data, Controls())
    diff = [np.abs(g[2].astype(int) - w.astype(int)).mean() for g, w in zip(frames, alone)]
    assert np.mean(diff) < 3 and max(diff) < 6  # see test_two_sessions_are_isolated_and_a_third_is_refused


def test_live_interrupt(client: TestClient, pcm: bytes) -> None:
    """{"type": "interrupt"} drops the sound held back in the session; the stream goes on."""
    with client.websocket_connect("/avatars/default/live") as ws:
        ws.receive_json()
        stream_pcm(ws, pcm[: RATE])  # 0.5 s
        ws.send_text(json.dumps({"type": "interrupt"}))
        ws.send_text(json.dumps({"type": "shout"}))
        stream_pcm(ws, bytes(RATE))  # 0.5 s of silence
        ws.send_text(json.dumps({"end": True}))
        frames, texts = live_messages(ws)
    assert texts[0] == {"interrupted": {"at": 0.5}}
    assert "interrupt" in texts[1]["error"]
    assert texts[-1]["end"] is True and len(frames) == 25


def test_live_unknown_avatar(client: TestClient) -> None:
    with client.websocket_connect("/avatars/nobody/live") as ws:
        assert "POST /avatars" in ws.receive_json()["error"]
        with pytest.raises(WebSocketDisconnect) as info:
            ws.receive_json()
    assert info.value.code == 4404


def test_two_sessions_are_isolated_and_a_third_is_refused(client: TestClient, pcm: bytes) -> None:
    silence = bytes(RATE * 2)  # 1 s
    with client.websocket_connect("/avatars/default/live") as a, client.websocket_connect("/avatars/default/live") as b:
        a.receive_json()
        b.receive_json()
        assert client.get("/status").json()["live_sessions"] == 2
        with client.websocket_connect("/avatars/default/live") as c:
            assert "busy" in c.receive_json()["error"]
        a.send_text(json.dumps({"controls": {"emotion": "surprised", "motion_intensity": 0}}))
        stream_pcm(a, pcm[: 2 * RATE * 2])  # 2 s of speech
        stream_pcm(b, silence)
        b.send_text(json.dumps({"end": True}))
        a.send_text(json.dumps({"end": True}))
        frames_b, texts_b = live_messages(b)
        frames_a, texts_a = live_messages(a)
    assert len(frames_a) == 2 * FPS and len(frames_b) == FPS
    assert [f[0] for f in frames_b] == list(range(FPS))
    assert texts_a[0]["controls"]["emotion"] == "surprised" and not any("controls" in t for t in texts_b)
    # each matches the same audio and controls run alone, straight through the API (up to JPEG)
    stored = client.app.state.facetalk.avatars.get("default")
    alone_a = solo_frames(stored.avatar, pcm[: 2 * RATE * 2], Controls(emotion="surprised", motion_intensity=0))
    alone_b = solo_frames(stored.avatar, silence, Controls())
    for got, want in ((frames_a, alone_a), (frames_b, alone_b)):
        assert len(got) == len(want)
        # Two sessions carry different watermarks (~1.8 grey levels apart, stronger where the frame has
        # texture) and the wire adds JPEG (~1.4): 2.2 on silence. How the server's thread happens to cut
        # the sound into pushes moves the phone reading a little, and the fitted mouth follows the
        # phones, so a speaking frame may differ more (2.4-2.5 on average over runs, single frames up to
        # ~4.1). Sessions that leaked into each other differ by more than 3 on average (asserted below).
        diff = [np.abs(g[2].astype(int) - w.astype(int)).mean() for g, w in zip(got, want)]
        assert np.mean(diff) < 3 and max(diff) < 6
    assert np.abs(frames_a[30][2].astype(int) - frames_b[20][2].astype(int)).mean() > 3
    assert wait_until(lambda: client.get("/status").json()["live_sessions"] == 0)


def test_dropped_client_frees_its_session(client: TestClient, pcm: bytes, workdir: Path) -> None:
    with client.websocket_connect("/avatars/default/live") as ws:
        ws.receive_json()
        stream_pcm(ws, pcm[: RATE * 2])
        ws.receive_bytes()  # frames are coming
        assert client.get("/status").json()["live_sessions"] == 1
    # the client left without {"end": true}: the slot and the half-made recording go at once
    assert wait_until(lambda: client.get("/status").json()["live_sessions"] == 0)
    assert wait_until(lambda: not list((workdir / "recordings").glob("live-*")))
    with client.websocket_connect("/avatars/default/live") as ws:  # and the slot can be used again
        assert ws.receive_json()["fps"] == FPS


def test_silent_client_is_dropped(tmp_path: Path) -> None:
    """A client that sends nothing loses its slot after idle_timeout_s (here 0.3 s); not warmed up,
    the built-in avatar is made on first use."""
    config = ServerConfig(idle_timeout_s=0.3, warm=False, workdir=tmp_path)
    with TestClient(create_app(config)) as quiet:
        with quiet.websocket_connect("/avatars/default/live") as ws:
            assert ws.receive_json()["fps"] == FPS
            assert ws.receive_json() == {"error": "no message for 0.3 s; the session is closed"}
            with pytest.raises(WebSocketDisconnect):
                ws.receive_json()
        assert wait_until(lambda: quiet.get("/status").json()["live_sessions"] == 0)


def test_first_frame_is_fast(client: TestClient, portrait_path: Path, pcm: bytes) -> None:
    """Upload -> analysed avatar -> live session -> first frame: within 500 ms on a warm server
    (asserted at 1.5 s here: CI machines are shared)."""
    started = time.perf_counter()
    avatar = upload_photo(client, portrait_path.read_bytes()).json()
    with client.websocket_connect(avatar["live"]) as ws:
        ws.receive_json()
        ws.send_bytes(pcm[: 4 * 640])  # 80 ms of sound: frame 0 and the frame of lookahead after it
        ws.receive_bytes()
        first = time.perf_counter() - started
        ws.send_text(json.dumps({"end": True}))
        live_messages(ws)
    print(f"upload to first frame: {first * 1000:.0f} ms")
    assert first < 1.5


def test_status_and_page(client: TestClient) -> None:
    status = client.get("/status").json()
    assert status["max_live_sessions"] == MAX_SESSIONS and status["live_sessions"] == 0
    page = client.get("/")
    assert page.status_code == 200 and "facetalk" in page.text
    for asset in ("app.js", "style.css", "audio-worklet.js"):
        assert client.get(f"/static/{asset}").status_code == 200
    assert "/avatars/{avatar_id}/generate" in client.get("/openapi.json").json()["paths"]


def test_serve_command_is_listed() -> None:
    from facetalk.cli import main

    with pytest.raises(SystemExit) as info:
        main(["serve", "--help"])
    assert info.value.code == 0
