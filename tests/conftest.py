"""Shared fixtures: the built-in portrait and voice, their rig (built once), and media made here.

Every file a test needs is either shipped with the package (`facetalk/assets`) or synthesised in a
temporary folder. The FaceRig of the portrait costs MediaPipe graph set-ups, so it is built once
per session and shared read-only.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
import wave
from collections.abc import Callable, Iterator
from importlib import resources
from pathlib import Path

import numpy as np
import pytest

RATE = 16000
SHARED_EVAL = Path(__file__).resolve().parents[1].parent / "shared" / "eval"


def asset_path(name: str) -> Path:
    path = Path(str(resources.files("facetalk.assets") / name))
    assert path.is_file(), f"missing package asset {name}"
    return path


def write_wav(path: Path, samples: np.ndarray, rate: int = RATE) -> Path:
    """16-bit PCM WAV; `samples` is (n,) mono or (n, channels), float in [-1, 1]."""
    x = np.asarray(samples, np.float64)
    channels = 1 if x.ndim == 1 else x.shape[1]
    pcm = np.round(np.clip(x, -1.0, 1.0) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as f:
        f.setnchannels(channels)
        f.setsampwidth(2)
        f.setframerate(rate)
        f.writeframes(pcm.tobytes())
    return path


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    """Mono float32 samples of a 16-bit PCM WAV and its rate."""
    with wave.open(str(path), "rb") as f:
        assert f.getsampwidth() == 2
        rate, channels = f.getframerate(), f.getnchannels()
        pcm = np.frombuffer(f.readframes(f.getnframes()), "<i2").astype(np.float32) / 32768.0
    return pcm.reshape(-1, channels).mean(1), rate


@pytest.fixture(scope="session")
def portrait_path() -> Path:
    return asset_path("portrait.png")


@pytest.fixture(scope="session")
def voice_path() -> Path:
    return asset_path("voice.wav")


@pytest.fixture(scope="session")
def portrait(portrait_path: Path) -> np.ndarray:
    """The built-in portrait as an (H, W, 3) uint8 RGB array (decoded with Pillow, not our reader)."""
    from PIL import Image

    with Image.open(portrait_path) as img:
        arr = np.array(img.convert("RGB"), np.uint8)
    arr.setflags(write=False)
    return arr


@pytest.fixture(scope="session")
def voice(voice_path: Path) -> np.ndarray:
    """The built-in voice as mono float32 at 16 kHz."""
    samples, rate = read_wav(voice_path)
    assert rate == RATE
    samples.setflags(write=False)
    return samples


@pytest.fixture(scope="session")
def rig(portrait: np.ndarray):
    """The portrait's FaceRig at 512 px, built once for the whole session."""
    from facetalk.face.rig import build_rig

    return build_rig(np.array(portrait), size=512)


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="session")
def short_voice_wav(voice: np.ndarray, media_dir: Path) -> Path:
    """2.5 s cut of the built-in voice (speech from the start), 16 kHz mono WAV."""
    return write_wav(media_dir / "voice_2500ms.wav", voice[: int(2.5 * RATE)])


@pytest.fixture(scope="session")
def silence_wav(media_dir: Path) -> Path:
    """2 s of digital silence, 16 kHz mono WAV."""
    return write_wav(media_dir / "silence_2s.wav", np.zeros(2 * RATE))


@pytest.fixture(scope="session")
def wav_file_writer() -> Callable[..., Path]:
    """``write_wav`` itself, for module-scoped fixtures (a test module cannot import this conftest
    by name: tests/media has a conftest of its own)."""
    return write_wav


@pytest.fixture
def wav_writer(tmp_path: Path) -> Callable[..., Path]:
    """``wav_writer(name, samples, rate=16000)`` -> a WAV in this test's tmp_path."""

    def make(name: str, samples: np.ndarray, rate: int = RATE) -> Path:
        return write_wav(tmp_path / name, samples, rate)

    return make


@pytest.fixture(scope="session")
def shared_eval() -> Path:
    """The shared evaluation folder; tests using it skip where it is absent."""
    if not SHARED_EVAL.is_dir():
        pytest.skip(f"evaluation media not available at {SHARED_EVAL}")
    return SHARED_EVAL


@contextlib.contextmanager
def uvicorn_in_thread(config: object) -> Iterator[tuple[str, int]]:
    """A real uvicorn server for `config` (a ServerConfig) on a free loopback port, in a thread,
    with the production settings; (host, port) while it runs."""
    import uvicorn

    from facetalk.stream.server import create_app, uvicorn_options

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
    try:
        yield host, port
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


@pytest.fixture(scope="session")
def serve_in_thread() -> Callable[..., contextlib.AbstractContextManager[tuple[str, int]]]:
    """`uvicorn_in_thread` for test modules (they cannot import this conftest by name)."""
    return uvicorn_in_thread
