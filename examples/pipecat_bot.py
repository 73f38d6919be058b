"""A Pipecat bot with a talking face, fully local: Pipecat's SmallWebRTC transport (aiortc) and a
small browser page; nothing leaves the machine.

    pip install "facetalk[pipecat]"
    python examples/pipecat_bot.py                   # WAV mode: no keys, no AI services
    python examples/pipecat_bot.py --photo me.jpg --wav hello.wav --emotion happy
    python examples/pipecat_bot.py --agent           # a conversation: edit agent_services() first

Open http://localhost:7860 and press Connect (allow the microphone). In WAV mode the avatar says
the WAV when you connect and again each time you stop talking; talk while it speaks to interrupt
it (the mouth closes, the face goes back to listening). In agent mode your speech goes through the
STT, LLM and TTS services you choose in `agent_services()`, and the avatar speaks the replies.
"""

from __future__ import annotations

import argparse
import os
import wave
from contextlib import asynccontextmanager
from pathlib import Path

import numpy as np
import uvicorn
from fastapi import BackgroundTasks, FastAPI
from fastapi.responses import FileResponse
from pipecat.audio.vad.silero import SileroVADAnalyzer
from pipecat.frames.frames import (BotStartedSpeakingFrame, BotStoppedSpeakingFrame, Frame, TTSAudioRawFrame,
                                   TTSStartedFrame, TTSStoppedFrame, VADUserStartedSpeakingFrame,
                                   VADUserStoppedSpeakingFrame)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.audio.vad_processor import VADProcessor
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.transports.base_transport import TransportParams
from pipecat.transports.smallwebrtc.connection import SmallWebRTCConnection
from pipecat.transports.smallwebrtc.request_handler import (SmallWebRTCPatchRequest, SmallWebRTCRequest,
                                                            SmallWebRTCRequestHandler)
from pipecat.transports.smallwebrtc.transport import SmallWebRTCTransport
from pipecat.workers.runner import WorkerRunner

from facetalk.api import Avatar
from facetalk.integrations.pipecat import FacetalkVideoService
from facetalk.motion.controls import Controls

ASSETS = Path(__file__).resolve().parents[1] / "facetalk" / "assets"
PAGE = Path(__file__).with_name("pipecat_client.html")
CHUNK_S = 0.02  # TTS services send 10-40 ms chunks


class WavSpeaker(FrameProcessor):
    """Stands in for LLM + TTS: says a WAV as TTS audio frames after each thing the user says (and
    when `frames()` is queued, e.g. on connect); the user speaking over it interrupts it."""

    def __init__(self, wav: str | os.PathLike[str], **kwargs) -> None:
        super().__init__(**kwargs)
        with wave.open(os.fspath(wav), "rb") as f:
            if f.getsampwidth() != 2:
                raise ValueError(f"{wav}: expected 16-bit PCM, got {8 * f.getsampwidth()}-bit samples")
            self.rate = f.getframerate()
            pcm = np.frombuffer(f.readframes(f.getnframes()), "<i2").reshape(-1, f.getnchannels())
        self._pcm = pcm.mean(axis=1).astype("<i2")  # mono: what TTS services send
        self._bot_speaking = False

    def frames(self) -> list[Frame]:
        """One spoken turn, as a TTS service sends it (in chunks, faster than real time)."""
        n = int(CHUNK_S * self.rate)
        chunks = [TTSAudioRawFrame(self._pcm[i:i + n].tobytes(), self.rate, 1) for i in range(0, len(self._pcm), n)]
        return [TTSStartedFrame(), *chunks, TTSStoppedFrame()]

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        await self.push_frame(frame, direction)
        if isinstance(frame, BotStartedSpeakingFrame):  # from the output transport, as it plays
            self._bot_speaking = True
        elif isinstance(frame, BotStoppedSpeakingFrame):
            self._bot_speaking = False
        elif isinstance(frame, VADUserStartedSpeakingFrame) and self._bot_speaking:
            await self.broadcast_interruption()  # barge-in: the avatar and the transport drop the rest
        elif isinstance(frame, VADUserStoppedSpeakingFrame) and direction == FrameDirection.DOWNSTREAM:
            for f in self.frames():
                await self.push_frame(f)


def agent_services() -> list[FrameProcessor]:
    """STT, LLM and TTS for --agent: any Pipecat services; edit to taste. For example, local:
    `WhisperSTTService()` (pipecat.services.whisper.stt; downloads its model once),
    `OLLamaLLMService(settings=OLLamaLLMService.Settings(model="llama3.2"))` (pipecat.services.
    ollama.llm, with an Ollama server), `PiperTTSService(settings=PiperTTSService.Settings(
    voice="en_US-ryan-high"))` (pipecat.services.piper.tts). Hosted: DeepgramSTTService,
    OpenAILLMService, CartesiaTTSService... (each needs its pipecat-ai extra and API key)."""
    from pipecat.services.ollama.llm import OLLamaLLMService
    from pipecat.services.piper.tts import PiperTTSService
    from pipecat.services.whisper.stt import WhisperSTTService

    return [WhisperSTTService(), OLLamaLLMService(settings=OLLamaLLMService.Settings(model="llama3.2")),
            PiperTTSService(settings=PiperTTSService.Settings(voice="en_US-ryan-high"))]


def conversation(transport: SmallWebRTCTransport, avatar: FacetalkVideoService) -> tuple[Pipeline, list[Frame]]:
    """The agent pipeline (STT -> LLM -> TTS -> avatar) and the frames that start it talking."""
    from pipecat.frames.frames import LLMRunFrame
    from pipecat.processors.aggregators.llm_context import LLMContext
    from pipecat.processors.aggregators.llm_response_universal import (LLMContextAggregatorPair,
                                                                       LLMUserAggregatorParams)

    stt, llm, tts = agent_services()
    context = LLMContext([{"role": "system", "content": "You are a friendly assistant with a face. "
                           "Answer in one or two short spoken sentences. Start by saying hello."}])
    turns = LLMContextAggregatorPair(context, user_params=LLMUserAggregatorParams(vad_analyzer=SileroVADAnalyzer()))
    pipeline = Pipeline([transport.input(), stt, turns.user(), llm, tts, avatar, transport.output(), turns.assistant()])
    return pipeline, [LLMRunFrame()]


async def run_bot(connection: SmallWebRTCConnection, face: Avatar, args: argparse.Namespace) -> None:
    """One call: a pipeline on this WebRTC connection until the browser hangs up."""
    transport = SmallWebRTCTransport(webrtc_connection=connection, params=TransportParams(
        audio_in_enabled=True, audio_out_enabled=True, video_out_enabled=True,
        video_out_width=512, video_out_height=512, video_out_framerate=args.fps))
    avatar = FacetalkVideoService(face, controls=Controls(emotion=args.emotion), fps=args.fps)
    if args.agent:
        pipeline, greeting = conversation(transport, avatar)
    else:
        speaker = WavSpeaker(args.wav)
        pipeline = Pipeline([transport.input(), VADProcessor(vad_analyzer=SileroVADAnalyzer()), speaker, avatar,
                             transport.output()])
        greeting = speaker.frames()
    worker = PipelineWorker(pipeline, params=PipelineParams(enable_metrics=True), enable_rtvi=False)

    @transport.event_handler("on_client_connected")
    async def on_client_connected(transport, client) -> None:
        await worker.queue_frames(greeting)

    @transport.event_handler("on_client_disconnected")
    async def on_client_disconnected(transport, client) -> None:
        await worker.cancel()

    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(worker)
    await runner.run()


def create_app(args: argparse.Namespace) -> FastAPI:
    """The page, and SmallWebRTC's offer/ICE endpoints (as Pipecat's own runner serves them)."""
    face = Avatar.from_image(args.photo)  # analysed once, shared by every call
    handler = SmallWebRTCRequestHandler()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        await handler.close()

    app = FastAPI(lifespan=lifespan)

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(PAGE)

    @app.post("/api/offer")
    async def offer(request: SmallWebRTCRequest, background_tasks: BackgroundTasks) -> dict | None:
        async def on_connection(connection: SmallWebRTCConnection) -> None:
            background_tasks.add_task(run_bot, connection, face, args)

        return await handler.handle_web_request(request=request, webrtc_connection_callback=on_connection)

    @app.patch("/api/offer")
    async def ice_candidates(request: SmallWebRTCPatchRequest) -> dict:
        await handler.handle_patch_request(request)
        return {"status": "success"}

    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photo", default=str(ASSETS / "portrait.png"), help="portrait (default: the built-in one)")
    parser.add_argument("--wav", default=str(ASSETS / "voice.wav"), help="what the avatar says in WAV mode")
    parser.add_argument("--agent", action="store_true", help="STT -> LLM -> TTS from agent_services() instead")
    parser.add_argument("--emotion", default="neutral", help='e.g. "happy" or "sad:0.5"')
    parser.add_argument("--fps", type=int, default=25)
    parser.add_argument("--host", default="localhost")
    parser.add_argument("--port", type=int, default=7860)
    args = parser.parse_args(argv)
    uvicorn.run(create_app(args), host=args.host, port=args.port)


if __name__ == "__main__":
    main()
