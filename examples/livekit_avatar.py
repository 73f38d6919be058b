"""A LiveKit voice agent with a facetalk face, against a self-hosted LiveKit server.

NOT RUN END TO END. The LiveKit server binary is not available from this project's package sources
(PyPI, npm, Debian), so this file was written against the installed livekit-agents 1.8 API and only
imported here; the video generator it uses is tested directly (tests/test_livekit.py, including
LiveKit's own AvatarRunner over a stand-in room). Treat it as a recipe to check on your server.

Two processes per conversation, the layout of LiveKit's own avatar example
(livekit/agents examples/avatar_agents/audio_wave):

- the agent (`python examples/livekit_avatar.py dev`): an AgentSession (STT, LLM, TTS) whose
  speech goes, through `DataStreamAudioOutput`, to the avatar participant instead of into the
  room; the avatar tells it when playback started and finished (and when it was interrupted);
- the avatar (started by the agent for each room: `python examples/livekit_avatar.py avatar`):
  joins the room as "facetalk-avatar", on behalf of the agent, and publishes the face and the
  voice, in sync, through `AvatarRunner` + `FacetalkVideoGenerator`. Rendering is CPU work: one
  avatar takes ~15 ms of CPU a frame, 0.4 of a core at 25 fps.

    pip install "facetalk[livekit]" "livekit-agents[openai,silero]"   # or your own STT/LLM/TTS plugins
    export LIVEKIT_URL=ws://localhost:7880 LIVEKIT_API_KEY=devkey LIVEKIT_API_SECRET=secret   # livekit-server --dev
    export OPENAI_API_KEY=...
    python examples/livekit_avatar.py dev          # then join the room from any LiveKit client
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys

from livekit import api, rtc
from livekit.agents import Agent, AgentServer, AgentSession, JobContext, cli
from livekit.agents.voice.avatar import (AvatarRunner, AvatarSession, DataStreamAudioOutput,
                                         DataStreamAudioReceiver)
from livekit.agents.voice.room_io import ATTRIBUTE_PUBLISH_ON_BEHALF

AVATAR_IDENTITY = "facetalk-avatar"
SAMPLE_RATE = 24000  # the agent sends its speech at this rate and the avatar publishes it unchanged
FPS = 25
TOKEN_ENV = "FACETALK_AVATAR_TOKEN"  # the avatar's room token, passed by environment, not argv

logger = logging.getLogger("facetalk-livekit")


# --- the agent ---------------------------------------------------------------------------------

def models() -> dict:
    """The agent's ears, mind and voice: any LiveKit plugins. OpenAI's and Silero's here."""
    try:
        from livekit.plugins import openai, silero
    except ImportError as e:
        raise RuntimeError('this example uses OpenAI and Silero: pip install "livekit-agents[openai,silero]" '
                           "(or put your own plugins in models())") from e
    return dict(vad=silero.VAD.load(), stt=openai.STT(), llm=openai.LLM(), tts=openai.TTS())


class FacetalkAvatarSession(AvatarSession):
    """Starts the avatar process for a room and routes the agent's speech to it."""

    def __init__(self, portrait: str | None = None) -> None:
        super().__init__()
        self._portrait = portrait
        self._process: asyncio.subprocess.Process | None = None

    @property
    def avatar_identity(self) -> str:
        return AVATAR_IDENTITY

    @property
    def provider(self) -> str:
        return "facetalk"

    async def start(self, agent_session: AgentSession, room: rtc.Room) -> None:
        await super().start(agent_session, room)
        token = (api.AccessToken()
                 .with_identity(AVATAR_IDENTITY)
                 .with_name("facetalk avatar")
                 .with_grants(api.VideoGrants(room_join=True, room=room.name))
                 .with_kind("agent")
                 .with_attributes({ATTRIBUTE_PUBLISH_ON_BEHALF: room.local_participant.identity})
                 .to_jwt())
        args = [sys.executable, os.path.abspath(__file__), "avatar"]
        if self._portrait:
            args += ["--portrait", self._portrait]
        self._process = await asyncio.create_subprocess_exec(*args, env={**os.environ, TOKEN_ENV: token})
        agent_session.output.replace_audio_tail(DataStreamAudioOutput(
            room,
            destination_identity=AVATAR_IDENTITY,
            sample_rate=SAMPLE_RATE,
            wait_remote_track=rtc.TrackKind.KIND_VIDEO,  # speak once the face is published
            wait_playback_start=True,  # AvatarRunner reports when the speech really starts playing
        ))

    async def aclose(self) -> None:
        await super().aclose()  # removes the avatar participant from the room
        if self._process is not None and self._process.returncode is None:
            self._process.terminate()
            await self._process.wait()


server = AgentServer()


@server.rtc_session()
async def entrypoint(ctx: JobContext) -> None:
    await ctx.connect()
    session = AgentSession(**models())
    avatar = FacetalkAvatarSession(portrait=os.environ.get("FACETALK_PORTRAIT"))
    await avatar.start(session, ctx.room)  # before session.start: the room then plays no agent audio itself
    await session.start(agent=Agent(instructions="You are a friendly assistant. Keep answers short."),
                        room=ctx.room)
    await session.generate_reply(instructions="greet the user")


# --- the avatar --------------------------------------------------------------------------------

async def run_avatar(url: str, token: str, portrait: str | None) -> None:
    from facetalk.api import Avatar
    from facetalk.integrations.livekit import FacetalkVideoGenerator

    face = Avatar.from_image(portrait or _builtin_portrait())
    video_gen = FacetalkVideoGenerator(face, fps=FPS, sample_rate=SAMPLE_RATE)
    room = rtc.Room()
    await room.connect(url, token)
    runner = AvatarRunner(room, audio_recv=DataStreamAudioReceiver(room), video_gen=video_gen,
                          options=video_gen.options)
    done = asyncio.Event()
    room.on("disconnected", lambda *_: done.set())
    room.on("participant_disconnected",
            lambda p: done.set() if p.kind == rtc.ParticipantKind.PARTICIPANT_KIND_AGENT else None)
    try:
        await runner.start()
        await done.wait()  # until the agent leaves
    finally:
        await runner.aclose()
        await video_gen.aclose()
        await room.disconnect()


def _builtin_portrait() -> str:
    from importlib import resources

    return str(resources.files("facetalk.assets") / "portrait.png")


def main() -> None:
    if sys.argv[1:2] != ["avatar"]:
        cli.run_app(server)  # dev / start / console ...: LiveKit's agent CLI
        return
    parser = argparse.ArgumentParser(description="the avatar process (the agent starts it)")
    parser.add_argument("avatar")
    parser.add_argument("--url", default=os.environ.get("LIVEKIT_URL"))
    parser.add_argument("--portrait", help="a photo with one face (default: the built-in portrait)")
    args = parser.parse_args()
    token = os.environ.get(TOKEN_ENV)
    if not args.url or not token:
        parser.error(f"needs LIVEKIT_URL (or --url) and {TOKEN_ENV} in the environment")
    logging.basicConfig(level=logging.INFO)
    asyncio.run(run_avatar(args.url, token, args.portrait))


if __name__ == "__main__":
    main()
