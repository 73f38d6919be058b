"""`facetalk serve`: the web page and the HTTP + WebSocket API over Avatars and live Sessions.

    POST /avatars                      photo upload (or default=true) -> {"id", "size", ...}
    GET  /avatars/{id}/preview.jpg     the analysed crop
    POST /avatars/{id}/generate        audio upload + controls -> MP4
    WS   /avatars/{id}/live            PCM in, frames out (protocol: stream.protocol)
    POST /avatars/{id}/webrtc          SDP offer in, answer out: sound up, face and sound down (stream.webrtc)
    GET  /recordings/{id}.mp4          a finished live session, once
    GET  /status                       live sessions, cached avatars, recordings
    GET  /                             the page; OpenAPI docs at /docs

All CPU work (photo analysis, renders, live pushes) runs in worker threads, so the event loop only
moves bytes. Every user error is a 4xx with a one-line {"detail"} (or a WebSocket {"error"}).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import re
import secrets
import shutil
import tempfile
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

import numpy as np
from fastapi import FastAPI, File, Form, HTTPException, Request, UploadFile, WebSocket
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from facetalk import __version__
from facetalk.api import Avatar
from facetalk.errors import FacetalkError
from facetalk.media.audio import probe_audio
from facetalk.media.image import PHOTO_FORMATS_TEXT
from facetalk.motion.controls import Controls
from facetalk.pipeline import photo_notes
from facetalk.stream.avatars import DEFAULT_ID, AvatarStore, StoredAvatar
from facetalk.stream.config import ServerConfig
from facetalk.stream.limits import BodyLimit, too_large
from facetalk.stream.capacity import Capacity, measure_capacity
from facetalk.stream.live import Admission, LiveContext, serve_live
from facetalk.stream.protocol import ProtocolError, clip, image_kind, jpeg, loads_bounded, updated_controls
from facetalk.stream.recording import RecordingStore
from facetalk.stream.timeouts import BodyTimeout, head_guarded
from facetalk.stream.webrtc import Busy, WebRTCHub, parse_offer

log = logging.getLogger("facetalk.serve")

STATIC = Path(__file__).with_name("static")
SWEEP_EVERY_S = 30.0  # how often expired recordings are deleted
WARM_SILENCE_S = 0.4  # pushed through a throw-away session at start-up
PREVIEW_QUALITY = 90
MAX_OFFER_BYTES = 128 * 1024  # a browser's offer is ~5 KB


@dataclass
class ServerState:
    """Everything the routes share; built when the app starts, removed when it stops."""

    config: ServerConfig
    workdir: Path
    avatars: AvatarStore
    live: LiveContext
    webrtc: WebRTCHub
    rig_lock: threading.Lock  # one photo analysis at a time: MediaPipe's graphs and log muting are global
    renders: asyncio.Semaphore


def create_app(config: ServerConfig | None = None) -> FastAPI:
    """The ASGI app. Its state is built on start-up (use TestClient as a context manager)."""
    config = config or ServerConfig()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state = _start(config)
        app.state.facetalk = state
        sweeper = asyncio.create_task(_sweep(state))
        try:
            if config.warm:
                await run_in_threadpool(_warm, state)
            yield
        finally:
            sweeper.cancel()
            await state.webrtc.close_all()
            if config.workdir is None:
                shutil.rmtree(state.workdir, ignore_errors=True)

    # FastAPIOffline serves the /docs and /redoc pages' scripts itself: FastAPI's own load them from
    # a CDN, so they would be blank on an offline machine.
    app = FastAPIOffline(title="facetalk", version=__version__, lifespan=lifespan,
                  description="One portrait photo + a voice -> a talking face: MP4 renders and live streams.")
    app.add_middleware(BodyLimit, limit_for=lambda scope: _body_limit(config, scope))
    app.add_middleware(BodyTimeout, idle_s=config.body_timeout_s, min_rate=config.min_upload_rate)  # outermost
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _internal_error)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    _routes(app)
    return app


def _routes(app: FastAPI) -> None:
    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    @app.get("/status", summary="Live sessions running, avatars and recordings kept")
    async def status(request: Request) -> dict[str, Any]:
        state = _state(request.app)
        admission = state.live.admission
        capacity = admission.capacity
        return {"version": __version__, "live_sessions": admission.active, "webrtc_sessions": len(state.webrtc.peers),
                "max_live_sessions": admission.limit, "live_sessions_behind": admission.behind(),
                "live_capacity": None if capacity is None else {"measured": not admission.fixed, **capacity.json()},
                "avatars": len(state.avatars), "recordings": len(state.live.recordings)}

    @app.post("/avatars", status_code=201, summary="Analyse a portrait photo once, for any number of renders")
    async def create_avatar(
        request: Request,
        photo: Annotated[UploadFile | None, File(description=f"portrait with one clear face: {PHOTO_FORMATS_TEXT}")] = None,
        default: Annotated[bool, Form(description="use the built-in portrait instead of an upload")] = False,
    ) -> dict[str, Any]:
        state = _state(request.app)
        if default == (photo is not None):
            raise HTTPException(422, "send either a photo (multipart field 'photo') or default=true")
        if photo is None:
            stored = await run_in_threadpool(_default_avatar, state)
        else:
            data = await photo.read(state.config.max_photo_bytes + 1)
            if len(data) > state.config.max_photo_bytes:
                raise HTTPException(413, too_large("photo", state.config.max_photo_bytes))
            stored = await run_in_threadpool(_analyse_upload, state, data, _display_name(photo.filename, "photo"))
        return _avatar_json(stored, state.config)

    @app.get("/avatars/{avatar_id}", summary="An avatar's description")
    async def get_avatar(request: Request, avatar_id: str) -> dict[str, Any]:
        return _avatar_json(await _stored(request.app, avatar_id), _state(request.app).config)

    @app.get("/avatars/{avatar_id}/preview.jpg", summary="The analysed crop, before any motion",
             response_class=Response, responses={200: {"content": {"image/jpeg": {}}}})
    async def preview(request: Request, avatar_id: str) -> Response:
        return Response((await _stored(request.app, avatar_id)).preview_jpeg, media_type="image/jpeg",
                        headers={"Cache-Control": "private, max-age=3600"})

    @app.post("/avatars/{avatar_id}/generate", summary="Render the avatar saying an audio file, as an MP4",
              response_class=FileResponse, responses={200: {"content": {"video/mp4": {}}}})
    async def generate(
        request: Request, avatar_id: str,
        audio: Annotated[UploadFile, File(description="voice clip: WAV, MP3, M4A, FLAC, OGG, or a video's sound")],
        controls: Annotated[str | None, Form(description='JSON object of controls, e.g. {"emotion": "happy:0.8", '
                                                         '"gaze": [10, -5], "distance": 1.1}')] = None,
    ) -> FileResponse:
        state = _state(request.app)
        stored = await _stored(request.app, avatar_id)
        chosen = _parse_controls(controls)
        folder = state.workdir / "renders" / secrets.token_hex(8)
        folder.mkdir(parents=True)
        try:
            out, frames = await _render(state, stored, audio, chosen, folder)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        return FileResponse(out, media_type="video/mp4", filename="facetalk.mp4",
                            headers={"X-Facetalk-Frames": str(frames)},
                            background=BackgroundTask(shutil.rmtree, folder, ignore_errors=True))

    @app.websocket("/avatars/{avatar_id}/live")
    async def live(websocket: WebSocket, avatar_id: str) -> None:
        await serve_live(websocket, await _lookup(websocket.app, avatar_id), _state(websocket.app).live)

    @app.post("/avatars/{avatar_id}/webrtc", summary="Start a live session over WebRTC: SDP offer in, answer out",
              responses={400: {"description": "the offer cannot be answered"}, 503: {"description": "busy"}})
    async def webrtc(request: Request, avatar_id: str) -> dict[str, Any]:
        """Post `{"sdp", "type": "offer", "controls"?}` from RTCPeerConnection.createOffer(); the offer
        must receive video and may send an audio track (the voice) and open a data channel (controls,
        in the WebSocket protocol's JSON messages). The answer comes back as `{"sdp", "type"}`."""
        state = _state(request.app)
        try:
            offer = parse_offer(json.loads(await request.body()))
        except ProtocolError as exc:
            raise HTTPException(422, str(exc)) from None
        except (ValueError, RecursionError):
            raise HTTPException(400, 'the offer must be a JSON object {"sdp": ..., "type": "offer"}') from None
        stored = await _stored(request.app, avatar_id)
        try:
            peer = await state.webrtc.answer(stored, offer)
        except Busy as exc:
            raise HTTPException(503, str(exc)) from None
        except ProtocolError as exc:
            raise HTTPException(400, str(exc)) from None
        answer = peer.pc.localDescription
        return {"sdp": answer.sdp, "type": answer.type}

    @app.get("/recordings/{recording_id}.mp4", summary="A finished live session's MP4; deleted once sent",
             response_class=FileResponse, responses={200: {"content": {"video/mp4": {}}}})
    async def recording(request: Request, recording_id: str) -> FileResponse:
        path = _state(request.app).live.recordings.take(recording_id)
        if path is None:
            raise HTTPException(404, "no such recording: unknown id, already downloaded, or expired")
        return FileResponse(path, media_type="video/mp4", filename="facetalk-live.mp4",
                            background=BackgroundTask(_unlink, path))


# -- start-up -------------------------------------------------------------------------------------

def _start(config: ServerConfig) -> ServerState:
    workdir = config.workdir or Path(tempfile.mkdtemp(prefix="facetalk-serve-"))
    workdir.mkdir(parents=True, exist_ok=True)
    recordings = RecordingStore(workdir / "recordings", config.max_recordings, config.recording_ttl_s)
    avatars = AvatarStore(config.max_avatars)
    state = ServerState(config, workdir, avatars, None, None, threading.Lock(),  # type: ignore[arg-type]
                        asyncio.Semaphore(config.max_renders))
    state.live = LiveContext(config, Admission(config.max_sessions, lambda: _measure(state)), recordings)
    state.webrtc = WebRTCHub(state.live)
    return state


def _warm(state: ServerState) -> None:
    """Load MediaPipe (via the built-in portrait), the phone recogniser and the renderer's caches now;
    then measure the live capacity, unless the operator fixed the limit."""
    stored = _default_avatar(state)
    session = stored.avatar.stream(fps=state.config.fps)
    rng = np.random.default_rng(0)
    session.push((rng.standard_normal(int(WARM_SILENCE_S * 16000)) * 1e-3).astype(np.float32))
    session.close()
    if state.live.admission.limit is None:
        state.live.admission.measured(_measure(state))
    log.info("facetalk serve: warmed up")


def _measure(state: ServerState) -> Capacity:
    """The live capacity of this machine now (stream.capacity), logged."""
    config = state.config
    capacity = measure_capacity(_default_avatar(state).avatar, config.fps, config.headroom, config.record,
                                state.workdir)
    log.info("facetalk serve: this machine makes %.0f live frames/s (%d threads, %.1f ms a frame each): "
             "%d live session%s at %g fps with %.0f %% headroom", capacity.frames_per_s, capacity.threads,
             capacity.ms_per_frame, capacity.sessions, "s" * (capacity.sessions != 1), config.fps,
             100 * (1 - config.headroom))
    return capacity


async def _sweep(state: ServerState) -> None:
    while True:
        await asyncio.sleep(SWEEP_EVERY_S)
        state.live.recordings.sweep()


# -- avatars ---------------------------------------------------------------------------------------

def _default_avatar(state: ServerState) -> StoredAvatar:
    stored = state.avatars.get(DEFAULT_ID)
    if stored is not None:
        return stored
    with state.rig_lock, resources.as_file(resources.files("facetalk.assets") / "portrait.png") as path:
        avatar = _crop_only(Avatar.from_image(path, size=state.config.size))
    return state.avatars.set_default(avatar, jpeg(avatar.rig.image, PREVIEW_QUALITY), tuple(photo_notes(avatar.rig, False)))


def _analyse_upload(state: ServerState, data: bytes, name: str) -> StoredAvatar:
    """Bytes of an uploaded photo -> a stored Avatar, or a 415/422 saying what was wrong."""
    kind = image_kind(data[:12])
    if kind is None:
        raise HTTPException(415, f"{name} is not a photo in a format facetalk reads; send {PHOTO_FORMATS_TEXT}")
    folder = state.workdir / "uploads"
    folder.mkdir(exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=folder, suffix=f".{kind}") as f:
        f.write(data)
        f.flush()
        try:
            with state.rig_lock:
                avatar = _crop_only(Avatar.from_image(f.name, size=state.config.size))
        except FacetalkError as exc:
            raise HTTPException(422, _renamed(exc, f.name, name)) from None
    return state.avatars.add(avatar, jpeg(avatar.rig.image, PREVIEW_QUALITY), tuple(photo_notes(avatar.rig, False)))


def _crop_only(avatar: Avatar) -> Avatar:
    """The server renders the crop only (never full_frame), so the full-size photo (up to 120 MB
    decoded) is not kept in the cache: the crop stands in for it."""
    return dataclasses.replace(avatar, photo=avatar.rig.image)


def _avatar_json(stored: StoredAvatar, config: ServerConfig) -> dict[str, Any]:
    base = f"/avatars/{stored.id}"
    return {"id": stored.id, "size": stored.avatar.rig.size, "faces": stored.avatar.rig.n_faces,
            "notes": list(stored.notes), "preview": f"{base}/preview.jpg", "generate": f"{base}/generate",
            "live": f"{base}/live", "webrtc": f"{base}/webrtc",
            "ice_servers": [{k: v for k, v in dataclasses.asdict(s).items() if v is not None} for s in config.ice_servers]}


# -- renders ---------------------------------------------------------------------------------------

async def _render(state: ServerState, stored: StoredAvatar, audio: UploadFile, controls: Controls,
                  folder: Path) -> tuple[Path, int]:
    """Save the upload, check it, render it (one of max_renders at a time); (MP4 path, frames)."""
    name = _display_name(audio.filename, "audio file")
    source = folder / "audio"
    await run_in_threadpool(_save_upload, audio, source)
    try:
        seconds = (await run_in_threadpool(probe_audio, source)).duration
    except FacetalkError as exc:
        raise HTTPException(415, _renamed(exc, source, name)) from None
    if seconds > state.config.max_render_seconds:
        raise HTTPException(413, f"{name} is {seconds:.0f} s long; the server renders at most "
                                 f"{state.config.max_render_seconds:g} s per request; send a shorter clip")
    out = folder / "facetalk.mp4"
    async with state.renders:
        try:
            summary = await run_in_threadpool(stored.avatar.render_to, out, source, controls, state.config.fps)
        except FacetalkError as exc:
            raise HTTPException(422, _renamed(exc, source, name)) from None
    return out, summary.frames


def _save_upload(upload: UploadFile, path: Path) -> None:
    upload.file.seek(0)
    with open(path, "wb") as f:
        shutil.copyfileobj(upload.file, f, 1 << 20)


def _parse_controls(text: str | None) -> Controls:
    if not text:
        return Controls()
    try:
        return updated_controls(Controls(), loads_bounded(text, "controls"))
    except ValueError as exc:  # ProtocolError or bad JSON
        reason = str(exc) if isinstance(exc, ProtocolError) else "it is not valid JSON"
        raise HTTPException(422, f"controls: {reason}") from None


# -- helpers ---------------------------------------------------------------------------------------

def _state(app: Any) -> ServerState:
    return app.state.facetalk


async def _lookup(app: Any, avatar_id: str) -> StoredAvatar | None:
    """The avatar, or None; the built-in one is made on first use where start-up did not warm it."""
    state = _state(app)
    stored = state.avatars.get(avatar_id)
    if stored is None and avatar_id == DEFAULT_ID:
        stored = await run_in_threadpool(_default_avatar, state)
    return stored


async def _stored(app: Any, avatar_id: str) -> StoredAvatar:
    stored = await _lookup(app, avatar_id)
    if stored is None:
        raise HTTPException(404, f"no avatar {clip(avatar_id)} (unknown, or evicted from the cache); "
                                 "create one with POST /avatars")
    return stored


def _display_name(filename: str | None, fallback: str) -> str:
    """How an upload is named in messages: its base name, printable and short, quoted."""
    base = re.sub(r"[^\w .()+-]", "_", os.path.basename(filename or ""))[:80]
    return f"'{base}'" if base.strip() else f"the {fallback}"


def _renamed(exc: Exception, path: str | os.PathLike[str], name: str) -> str:
    """An error about a temporary file, naming the upload instead (``name`` comes quoted, as does the
    path in the media layer's messages: the quotes are not doubled)."""
    text, path = str(exc), os.fspath(path)
    return text.replace(f"'{path}'", name).replace(path, name)


def _body_limit(config: ServerConfig, scope: dict[str, Any]) -> tuple[int, str] | None:
    if scope.get("method") != "POST":
        return None
    path = scope.get("path", "")
    if path.rstrip("/") == "/avatars":
        return config.max_photo_bytes, "photo"
    if path.startswith("/avatars/") and path.endswith("/generate"):
        return config.max_audio_bytes, "audio file"
    if path.startswith("/avatars/") and path.endswith("/webrtc"):
        return MAX_OFFER_BYTES, "offer"
    return None


def _unlink(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink()


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    """FastAPI's list of validation errors as one line."""
    errors = exc.errors() if isinstance(exc, RequestValidationError) else []
    parts = [f"{'.'.join(str(p) for p in e.get('loc', ())[1:]) or 'request'}: {e.get('msg', 'invalid')}"
             for e in errors]
    return JSONResponse({"detail": "; ".join(parts) or "invalid request"}, status_code=422)


async def _internal_error(request: Request, exc: Exception) -> JSONResponse:
    log.error("internal error on %s %s", request.method, request.url.path, exc_info=exc)
    return JSONResponse({"detail": f"internal error ({type(exc).__name__}); please report it"}, status_code=500)


def uvicorn_options(config: ServerConfig) -> dict[str, Any]:
    """uvicorn settings besides the app, host and port: 1 MB WebSocket messages, and the slow-client
    guard on request heads (uvicorn itself bounds only the idle time between requests)."""
    from uvicorn.protocols.http.auto import AutoHTTPProtocol

    return {"ws_max_size": 1 << 20, "http": head_guarded(AutoHTTPProtocol, config.header_timeout_s)}


def serve(host: str = "127.0.0.1", port: int = 8000, config: ServerConfig | None = None) -> None:
    """Run the server until interrupted (uvicorn)."""
    import uvicorn

    config = config or ServerConfig()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    print(f"facetalk serve: open http://{'localhost' if host in ('127.0.0.1', '0.0.0.0') else host}:{port}/ "
          "(Ctrl-C stops)", flush=True)
    uvicorn.run(create_app(config), host=host, port=port, log_level="info", **uvicorn_options(config))
