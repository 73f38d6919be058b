"""Hostile or unlucky surroundings: special files as outputs, termination signals mid-render,
deeply nested JSON, and clients that send their requests slowly.

The slow-client tests run a real uvicorn server (in a thread, on a free port of 127.0.0.1) with
its time limits cut to about a second, and talk to it over raw sockets.
"""

from __future__ import annotations

import http.client
import json
import os
import select
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from facetalk.cli import main
from facetalk.errors import FacetalkError
from facetalk.media.image import write_image
from facetalk.media.video import VideoWriter, probe_video
from facetalk.stream.config import ServerConfig
from facetalk.stream.protocol import MAX_JSON_CHARS, MAX_JSON_DEPTH
from facetalk.stream.server import create_app, uvicorn_options

REPO = Path(__file__).resolve().parents[1]
NESTED = "[" * 100_000 + "]" * 100_000


def one_error_line(capsys: pytest.CaptureFixture[str], rc: int, *fragments: str) -> str:
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert rc != 0 and len(lines) == 1 and lines[0].startswith("facetalk: error:"), err
    for f in fragments:
        assert f in lines[0], lines[0]
    return lines[0]


def generate(out: Path, image: Path, audio: Path) -> int:
    return main(["generate", "-q", "--image", str(image), "--audio", str(audio), "-o", str(out)])


# -- 1. outputs that are not regular files --------------------------------------------------------

def test_output_device_is_refused_and_kept(capsys, tmp_path: Path, portrait_path: Path, silence_wav: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("making a device node needs root")
    dev = tmp_path / "null"
    os.mknod(dev, stat.S_IFCHR | 0o666, os.makedev(1, 3))  # a second /dev/null
    handlers = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGHUP)
    rc = generate(dev, portrait_path, silence_wav)
    one_error_line(capsys, rc, "is a device", "only a regular file is replaced")
    st = dev.lstat()
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(1, 3)
    assert [p.name for p in tmp_path.iterdir()] == ["null"]  # no partial file either
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGHUP)) == handlers  # restored


def test_output_fifo_is_refused_and_kept(capsys, tmp_path: Path, portrait_path: Path, silence_wav: Path) -> None:
    fifo = tmp_path / "pipe.mp4"
    os.mkfifo(fifo)
    rc = generate(fifo, portrait_path, silence_wav)
    one_error_line(capsys, rc, "named pipe (FIFO)")
    assert stat.S_ISFIFO(fifo.lstat().st_mode)
    assert [p.name for p in tmp_path.iterdir()] == ["pipe.mp4"]
    with pytest.raises(FacetalkError, match="named pipe"):  # the image writer checks the same way
        write_image(fifo, np.zeros((8, 8, 3), np.uint8))
    assert stat.S_ISFIFO(fifo.lstat().st_mode)


def test_special_file_appearing_during_a_render_is_kept(tmp_path: Path) -> None:
    """The target is checked again just before the rename: a FIFO made there mid-render survives."""
    out = tmp_path / "clip.mp4"
    writer = VideoWriter(out, 64, 64, fps=25)
    writer.write(np.zeros((64, 64, 3), np.uint8))
    os.mkfifo(out)
    with pytest.raises(FacetalkError, match="named pipe"):
        writer.close()
    assert stat.S_ISFIFO(out.lstat().st_mode)
    assert [p.name for p in tmp_path.iterdir()] == ["clip.mp4"]


def test_symlink_to_a_file_replaces_the_target(capsys, tmp_path: Path, portrait_path: Path,
                                               silence_wav: Path) -> None:
    """A link is followed, as `>` does: the target file gets the video, in its own folder, and the
    link still points at it."""
    real_dir, link_dir = tmp_path / "real", tmp_path / "links"
    real_dir.mkdir()
    link_dir.mkdir()
    target = real_dir / "clip.mp4"
    target.write_bytes(b"old")
    link = link_dir / "clip.mp4"
    link.symlink_to(target)
    rc = generate(link, portrait_path, silence_wav)
    assert rc == 0, capsys.readouterr().err
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert probe_video(target).n_frames == 50
    assert [p.name for p in real_dir.iterdir()] == ["clip.mp4"] and [p.name for p in link_dir.iterdir()] == ["clip.mp4"]


@pytest.mark.parametrize("kind", ["dangling", "to_fifo", "to_folder"])
def test_symlink_to_no_regular_file_is_refused(kind: str, capsys, tmp_path: Path, portrait_path: Path,
                                               silence_wav: Path) -> None:
    target = tmp_path / "target"
    if kind == "to_fifo":
        os.mkfifo(target)
    elif kind == "to_folder":
        target.mkdir()
    link = tmp_path / "clip.mp4"
    link.symlink_to(target)
    rc = generate(link, portrait_path, silence_wav)
    expected = {"dangling": "which does not exist", "to_fifo": "named pipe", "to_folder": "existing folder"}[kind]
    one_error_line(capsys, rc, "symbolic link", expected)
    assert link.is_symlink() and sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["clip.mp4"] + ([] if kind == "dangling" else ["target"]))


# -- 2. SIGTERM and SIGHUP mid-render ------------------------------------------------------------

@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_termination_signal_removes_the_partial_file(signum: int, tmp_path: Path, portrait_path: Path,
                                                     voice_path: Path) -> None:
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, "-m", "facetalk.cli", "generate", "-q", "--image", str(portrait_path),
                             "--audio", str(voice_path), "-o", str(out_dir / "clip.mp4")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + 120
        while not any(".partial-" in p.name for p in out_dir.iterdir()):
            assert proc.poll() is None and time.monotonic() < deadline, "the render never started"
            time.sleep(0.05)
        time.sleep(0.3)  # a few frames into the render (the 13 s voice takes several seconds)
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    name = signal.Signals(signum).name
    assert proc.returncode == 128 + signum, err
    assert err.strip() == f"facetalk: terminated by {name}"
    assert list(out_dir.iterdir()) == []


# -- 3. deeply nested or long JSON -----------------------------------------------------------------

@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    config = ServerConfig(warm=False, idle_timeout_s=10, workdir=tmp_path_factory.mktemp("hostile"))
    with TestClient(create_app(config)) as c:
        yield c


@pytest.mark.parametrize("controls, fragment", [
    (NESTED, f"at most {MAX_JSON_CHARS} characters"),
    ("[" * 2000 + "]" * 2000, f"at most {MAX_JSON_DEPTH} levels"),
    ('{"gaze": ' + "[" * 500 + "]" * 500 + "}", f"at most {MAX_JSON_DEPTH} levels"),
], ids=["100000_deep", "2000_deep", "deep_inside"])
def test_nested_controls_over_http_are_422(client: TestClient, voice: np.ndarray, wav_writer, controls: str,
                                           fragment: str) -> None:
    wav = wav_writer("v.wav", voice[:16000]).read_bytes()
    r = client.post("/avatars/default/generate", files={"audio": ("v.wav", wav)}, data={"controls": controls})
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert detail.startswith("controls: ") and fragment in detail and "\n" not in detail
    assert client.get("/status").status_code == 200


def test_nested_json_over_websocket_is_an_error_and_the_session_goes_on(client: TestClient) -> None:
    with client.websocket_connect("/avatars/default/live") as ws:
        assert ws.receive_json()["fps"] == 25
        ws.send_text(NESTED)
        assert f"at most {MAX_JSON_CHARS} characters" in ws.receive_json()["error"]
        ws.send_text(json.dumps({"controls": {"gaze": [1, 2]}}).replace("[1, 2]", "[" * 900 + "]" * 900))
        assert f"at most {MAX_JSON_DEPTH} levels" in ws.receive_json()["error"]
        ws.send_text(json.dumps({"controls": {"emotion": "happy"}}))  # still answering
        assert ws.receive_json()["controls"]["emotion"] == "happy"
        ws.send_text(json.dumps({"end": True}))
        while not (message := ws.receive_json()).get("end"):
            pass
    assert message["frames"] == 0


# -- 4. slow request heads and bodies --------------------------------------------------------------

TIMEOUT_S = 1.0


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    """A real uvicorn server with the production settings, its time limits set to TIMEOUT_S."""
    import uvicorn

    config = ServerConfig(warm=False, header_timeout_s=TIMEOUT_S, body_timeout_s=TIMEOUT_S,
                          workdir=tmp_path_factory.mktemp("slow"))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    host, port = sock.getsockname()
    server = uvicorn.Server(uvicorn.Config(create_app(config), log_level="warning", **uvicorn_options(config)))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.02)
    yield host, port
    server.should_exit = True
    thread.join(10)
    sock.close()


def held_for(address: tuple[str, int], chunks: list[bytes], pause: float = 0.0,
             limit: float = 10.0) -> tuple[float, bytes]:
    """Send `chunks` (`pause` s apart), then read until the server closes; (seconds held, reply)."""
    with socket.create_connection(address, timeout=limit) as s:
        started = time.monotonic()
        for chunk in chunks:
            if select.select([s], [], [], 0)[0]:  # answered (or closed): stop sending
                break
            try:
                s.sendall(chunk)
            except OSError:  # closed on us while trickling: that is the point
                break
            time.sleep(pause)
        reply = b""
        try:
            while data := s.recv(65536):
                reply += data
        except ConnectionResetError:
            pass
        return time.monotonic() - started, reply


def assert_still_serving(address: tuple[str, int]) -> None:
    conn = http.client.HTTPConnection(*address, timeout=5)
    conn.request("GET", "/status")
    assert conn.getresponse().status == 200
    conn.close()


def test_stalled_body_gets_408_and_is_closed(live_server: tuple[str, int]) -> None:
    head = (b"POST /avatars HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n"
            b"Content-Length: 1000\r\n\r\n")
    seconds, reply = held_for(live_server, [head + b"--b\r\nConte"])  # 10 bytes of 1000, then nothing
    print(f"stalled body held {seconds:.2f} s")
    assert reply.startswith(b"HTTP/1.1 408 ") and b"too slowly" in reply
    assert TIMEOUT_S * 0.9 < seconds < TIMEOUT_S + 3
    assert_still_serving(live_server)


def test_trickled_body_is_cut_off(live_server: tuple[str, int]) -> None:
    """A byte every half second never stalls a read for the whole TIMEOUT_S, but falls far below
    the minimum average rate."""
    head = b"POST /avatars HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\nContent-Length: 1000\r\n\r\n"
    seconds, reply = held_for(live_server, [head] + [b"-"] * 20, pause=0.5)
    print(f"trickled body held {seconds:.2f} s")
    assert reply.startswith(b"HTTP/1.1 408 ")
    assert seconds < TIMEOUT_S + 3


def test_unread_stalled_body_is_closed(live_server: tuple[str, int]) -> None:
    """A route that answers without reading the body (405 here): the half-sent rest is not waited for."""
    seconds, reply = held_for(live_server, [b"POST /status HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n0123456789"])
    assert reply.startswith(b"HTTP/1.1 405 ") and seconds < TIMEOUT_S + 3
    assert_still_serving(live_server)


@pytest.mark.parametrize("chunks", [[], [b"GET /status HTTP/1.1\r\n"] + [b"X-Slow: 1\r\n"] * 20],
                         ids=["silent", "trickled_headers"])
def test_slow_request_head_is_closed(live_server: tuple[str, int], chunks: list[bytes]) -> None:
    seconds, reply = held_for(live_server, chunks, pause=0.2)
    print(f"slow head held {seconds:.2f} s")
    assert reply == b"" and seconds < TIMEOUT_S + 3
    assert_still_serving(live_server)


def test_keep_alive_and_websockets_outlive_the_head_deadline(live_server: tuple[str, int]) -> None:
    """The deadline is on each request head only: a kept-alive connection's next request and an
    open WebSocket are not cut off by it."""
    from websockets.sync.client import connect

    conn = http.client.HTTPConnection(*live_server, timeout=5)
    for _ in range(2):
        conn.request("GET", "/status")
        assert conn.getresponse().read() and conn.sock is not None
        time.sleep(TIMEOUT_S * 0.6)
    conn.close()
    with connect(f"ws://{live_server[0]}:{live_server[1]}/avatars/default/live", open_timeout=60) as ws:
        assert json.loads(ws.recv(timeout=60))["fps"] == 25
        time.sleep(TIMEOUT_S * 1.5)
        ws.send(json.dumps({"controls": {"emotion": "sad"}}))
        assert json.loads(ws.recv(timeout=10))["controls"]["emotion"] == "sad"
