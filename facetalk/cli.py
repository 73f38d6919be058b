"""`facetalk`: the command line. Every user error is one line on stderr and a non-zero exit."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from pathlib import Path
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from importlib import resources
from typing import TYPE_CHECKING

from facetalk import __version__
from facetalk.errors import FacetalkError
from facetalk.motion.controls import Controls

if TYPE_CHECKING:
    from facetalk.pipeline import RenderSummary

DEMO_PORTRAIT = "portrait.png"  # public-domain NASA photo (see facetalk/assets/SOURCES.md)
DEMO_VOICE = "voice.wav"  # made by tools/make_demo_voice.sh


class Terminated(BaseException):
    """SIGTERM or SIGHUP, raised in the main thread like Ctrl-C's KeyboardInterrupt, so that the
    writers' cleanup (temporary files) runs on the way out. A BaseException, so that no
    ``except Exception`` swallows it."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@contextmanager
def _signals_raise() -> Iterator[None]:
    """While the body runs, SIGTERM and SIGHUP raise Terminated (once: a second signal while
    cleaning up is ignored, so it cannot cut the cleanup short). The previous handlers come back
    afterwards. `serve` does not use this: uvicorn handles the signals itself."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set from the main thread
        return
    signums = (signal.SIGTERM, signal.SIGHUP)

    def handler(signum: int, frame: object) -> None:
        for s in signums:
            signal.signal(s, signal.SIG_IGN)
        raise Terminated(signum)

    # A signal ignored by whoever started us (nohup ignores SIGHUP) stays ignored.
    signums = tuple(s for s in signums if signal.getsignal(s) is not signal.SIG_IGN)
    previous = {s: signal.signal(s, handler) for s in signums}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def _progress_bar(enabled: bool):
    """A tqdm callback (frames done, total) on stderr, or None when quiet."""
    if not enabled:
        return None, lambda: None
    from tqdm import tqdm

    state: dict[str, tqdm] = {}

    def update(done: int, total: int) -> None:
        bar = state.get("bar")
        if bar is None:
            bar = state["bar"] = tqdm(total=total, unit="frame", file=sys.stderr, leave=False, dynamic_ncols=True)
        bar.update(done - bar.n)

    def close() -> None:
        if "bar" in state:
            state["bar"].close()

    return update, close


def _add_render_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--size", type=int, default=512, help="side of the square crop in px (default 512)")
    p.add_argument("--fps", type=float, default=25.0, help="frames per second (default 25)")
    p.add_argument("--seed", type=int, default=0, help="seed of the motion; same seed, same video")
    p.add_argument("--full-frame", action="store_true",
                   help="paste the animated face back into the whole photo (longer side at most 1920 px)")
    p.add_argument("--face", type=int, default=None, metavar="N",
                   help="which face to animate when the photo has several (0 = largest)")
    p.add_argument("--motion-intensity", type=float, default=1.0, metavar="X",
                   help="head motion: 0 = still, 1 = natural (default), up to 3")
    p.add_argument("--no-blink", action="store_true", help="keep the eyes open")
    p.add_argument("--pose-lock", action="store_true", help="keep the head in the photo's pose")
    p.add_argument("--gaze", default="0,0", metavar="YAW,PITCH",
                   help="where the eyes look, in degrees from the camera (+yaw: image right, +pitch: up; "
                        "default 0,0 = into the camera)")
    p.add_argument("--distance", type=float, default=1.0, metavar="D",
                   help="head-to-camera distance relative to the photo (0.8 = closer, 1.3 = farther; 0.5..2)")
    p.add_argument("--emotion", default="neutral", metavar="NAME[:INTENSITY]",
                   help="neutral, happy, sad, angry or surprised, optionally with an intensity 0..1.5 (happy:0.5)")
    p.add_argument("--no-watermark", action="store_true",
                   help="leave out the invisible watermark that marks every frame as made by facetalk (on by "
                        "default; turning it off is recorded in the file's metadata)")
    p.add_argument("--label", action="store_true", help='burn a small visible "AI-generated" tag into a corner')
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="facetalk", description="Photo + voice -> talking-face video, on a CPU.")
    parser.add_argument("--version", action="version", version=f"facetalk {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    gen = sub.add_parser("generate", help="render PHOTO saying VOICE to an MP4")
    gen.add_argument("--image", required=True, help="portrait photo (JPEG, PNG, WebP, ...)")
    gen.add_argument("--audio", required=True, help="voice clip (WAV, MP3, M4A, FLAC, OGG, or a video's sound)")
    gen.add_argument("-o", "--output", required=True, help="output MP4 path")
    gen.add_argument("--text", default=None, metavar="WORDS",
                     help="the words the voice says (English): every lip shape is placed by aligning them to the "
                          "sound instead of recognising it (a voice agent's TTS text, a script)")
    _add_render_options(gen)
    demo = sub.add_parser("demo", help="render the built-in portrait saying the built-in voice clip")
    demo.add_argument("-o", "--output", default="facetalk_demo.mp4", help="output MP4 (default facetalk_demo.mp4)")
    _add_render_options(demo)
    anim = sub.add_parser("animate", help="move PHOTO as the face in a driving VIDEO moves, with its sound")
    anim.add_argument("--image", required=True, help="portrait photo (JPEG, PNG, WebP, ...)")
    anim.add_argument("--driving", required=True, help="video of a face to copy head and face motion from")
    anim.add_argument("-o", "--output", required=True, help="output MP4 path")
    anim.add_argument("--only", default=None, metavar="PART[,PART]",
                      help="take only these parts of the driver's motion: pose (head turns, nods, moves), "
                           "expression (everything on the face: mouth, blinks, brows, gaze) or lips (the mouth "
                           "alone); the rest stays as in the photo (default: pose,expression)")
    _add_render_options(anim)
    anim.set_defaults(fps=None)  # the driving video's own frame rate unless --fps is given
    bat = sub.add_parser("batch", help="render many videos from a jobs file (CSV or JSON Lines, one job a row), "
                                       "on a local process pool or a Ray cluster")
    bat.add_argument("jobs", help="jobs file: columns image, audio, optional output, and any generate option "
                                  "(size, fps, seed, full_frame, emotion, gaze, distance, ...)")
    bat.add_argument("--out", required=True, help="folder for the videos and results.jsonl")
    bat.add_argument("--workers", type=int, default=None, metavar="N",
                     help="processes (default: one per core), or with --ray tasks in flight "
                          "(default: the cluster's CPUs)")
    bat.add_argument("--ray", nargs="?", const="local", default=None, metavar="ADDRESS",
                     help="run the jobs as Ray tasks: on the cluster at ADDRESS (auto, HOST:6379, ray://HOST:10001), "
                          "or on a new local instance without ADDRESS; needs pip install \"facetalk[ray]\"")
    bat.add_argument("--retries", type=int, default=2, metavar="K",
                     help="tries more for a job whose worker died (default 2)")
    bat.add_argument("--skip-bad", action="store_true", help="render the valid rows and record the bad ones, "
                                                             "instead of stopping before any work")
    bat.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    ver = sub.add_parser("verify", help="is VIDEO made by facetalk? reads its watermark and metadata "
                                        "(exit 0: ours, 1: not ours, 2: unreadable)")
    ver.add_argument("video", help="video file to check (MP4, MOV, MKV, WebM, AVI, ...)")
    ver.add_argument("--json", action="store_true", help="print one JSON object")
    bench = sub.add_parser("bench", help="measure speed: rendering, end to end, photo analysis")
    bench.add_argument("--json", action="store_true", help="print one JSON object")
    bench.add_argument("--image", default=None, help="portrait to measure with (default: the demo's)")
    bench.add_argument("--seconds", type=float, default=10.0, help="seconds of audio for the end-to-end run")
    bench.add_argument("--live", action="store_true",
                       help="measure live sessions instead: latency, first frame, concurrent sessions, memory")
    bench.add_argument("--live-minutes", type=float, default=10.0,
                       help="minutes streamed for the live memory check (0 = skip it)")
    bench.add_argument("--idle-minutes", type=float, default=60.0,
                       help="with --live: minutes of silence a session listens to for the idle memory check "
                            "(2-5 s of work a minute; 0 = skip it)")
    bench.add_argument("--batch", action="store_true",
                       help="measure batch throughput instead: 1 and N local workers, one job alone, Ray beside "
                            "the local pool (jobs of --seconds of audio; a few minutes)")
    bench.add_argument("--soak", action="store_true",
                       help="with --live: real-time WebSocket clients against `facetalk serve` (started here) for "
                            "--soak-minutes: as many as it admits by its own measurement, plus one more")
    bench.add_argument("--soak-minutes", type=float, default=3.0, help="with --soak: how long (default 3)")
    bench.add_argument("--clients", type=int, default=None, metavar="N",
                       help="with --soak: this many clients instead of as many as the server admits")
    bench.add_argument("--max-sessions", type=int, default=None, metavar="N",
                       help="with --soak: fix the server's session limit instead of letting it measure one")
    bench.add_argument("--url", default=None, help="with --soak: a running server to soak instead (http://host:port)")
    bench.add_argument("--webrtc", action="store_true",
                       help="with --live: the WebRTC path on loopback instead (aiortc clients): bitrate, PSNR, "
                            "latency, lips vs sound, sessions sustained beside the WebSocket path (each run "
                            "--seconds long, up to --max-sessions, default 6), server memory over --live-minutes")
    bench.add_argument("--watermark", action="store_true",
                       help="measure the watermark instead: embedding cost, PSNR, detection after attacks, "
                            "false positives (takes a few minutes)")
    bench.add_argument("--clips", type=int, default=24, help="with --watermark: generated 3 s clips (default 24)")
    bench.add_argument("--real", default=None, metavar="DIR",
                       help="with --watermark: folder of real videos for the false-positive count "
                            "(default ../shared/eval/video_real when it exists)")
    srv = sub.add_parser("serve", help="web page + HTTP/WebSocket API: live talking face from a microphone or file")
    srv.add_argument("--host", default="127.0.0.1",
                     help="address to listen on (default 127.0.0.1; 0.0.0.0 for every interface; the page's "
                          "microphone then needs https)")
    srv.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    srv.add_argument("--max-sessions", type=int, default=None, metavar="N",
                     help="live sessions at once; more are refused until one ends (default: as many as the "
                          "server measures at start-up that this machine serves in real time)")
    srv.add_argument("--ice-server", action="append", default=[], metavar="URL",
                     help="a STUN or TURN server for WebRTC, used by the server and the page (repeatable; e.g. "
                          "turn:turn.example.org:3478): needed only where browsers reach the server through NAT")
    srv.add_argument("--ice-username", default=None, help="with --ice-server: the TURN servers' username")
    srv.add_argument("--ice-credential", default=None, help="with --ice-server: the TURN servers' password")
    ev = sub.add_parser("eval", help="measure lip-sync, motion, identity and image quality against real clips")
    ev.add_argument("--videos", required=True, help="folder of real talking-face videos (mp4, avi, mpg, ...)")
    ev.add_argument("--out", required=True, help="folder for report.json, report.md, plots and generated clips")
    ev.add_argument("--json", action="store_true", help="print the report as JSON on stdout")
    ev.add_argument("--seed", type=int, default=0, help="seed of the generated motion")
    ev.add_argument("--transcripts", default=None, metavar="DIR",
                    help="folder of <clip name>.txt with the words each clip says: those clips are generated with "
                         "generate --text, and bilabials_shut checks that the lips shut on their M, B and P "
                         "(tools/grid_transcripts.py writes them for GRID clips)")
    ev.add_argument("--from-sound", action="store_true",
                    help="with --transcripts: generate from the sound alone, the words serving only to measure")
    ev.add_argument("--reenact", nargs="+", default=None, metavar="PHOTO",
                    help="measure reenactment instead: every clip drives these photos (files or folders) through "
                         "`facetalk animate`; writes reenact.json and reenact.md")
    return parser


def _controls(args: argparse.Namespace) -> Controls:
    try:
        gaze = tuple(float(v) for v in args.gaze.split(","))
    except ValueError:
        gaze = ()
    if len(gaze) != 2:
        raise FacetalkError(f"--gaze takes YAW,PITCH in degrees, as in --gaze 10,-5; got {args.gaze!r}")
    try:
        return Controls(seed=args.seed, motion_intensity=args.motion_intensity, blink=not args.no_blink,
                        gaze=gaze, distance=args.distance, emotion=args.emotion, pose_lock=args.pose_lock)
    except ValueError as exc:  # the API's field names, said as the flags the user typed
        message = str(exc)
        for field in ("motion_intensity", "gaze", "distance", "emotion"):
            message = message.replace(field, "--" + field.replace("_", "-"), 1) if field in message else message
        raise FacetalkError(message) from None


def _render(image: str, audio: str, args: argparse.Namespace) -> None:
    from facetalk.pipeline import render_video

    update, close = _progress_bar(not args.quiet and sys.stderr.isatty())
    try:
        summary = render_video(image, audio, args.output, size=args.size, fps=args.fps, controls=_controls(args),
                               full_frame=args.full_frame, face=args.face, progress=update,
                               watermark=not args.no_watermark, label=args.label, text=getattr(args, "text", None))
    finally:
        close()
    _report(summary, args.output)


def _parts(only: str | None) -> tuple[str, ...]:
    from facetalk.motion.encode import ALL_PARTS, PARTS

    if only is None:
        return ALL_PARTS
    parts = tuple(p.strip() for p in only.split(",") if p.strip())
    if not parts or any(p not in PARTS for p in parts):
        raise FacetalkError(f"--only takes pose, expression or lips (or several, comma-separated), got {only!r}")
    return parts


def _animate(args: argparse.Namespace) -> None:
    from facetalk.pipeline import animate_video

    parts = _parts(args.only)
    controls = _controls(args)
    update, close = _progress_bar(not args.quiet and sys.stderr.isatty())
    try:
        summary = animate_video(args.image, args.driving, args.output, parts=parts, size=args.size, fps=args.fps,
                                controls=controls, full_frame=args.full_frame, face=args.face, progress=update,
                                watermark=not args.no_watermark, label=args.label)
    finally:
        close()
    _report(summary, args.output)


def _report(summary: RenderSummary, output: str) -> None:
    for note in summary.notes:
        print(f"facetalk: note: {note}", file=sys.stderr)
    print(f"wrote {output}: {summary.frames} frames ({summary.video_seconds:.2f} s of video, "
          f"{summary.width}x{summary.height}) in {summary.seconds:.2f} s = {summary.fps:.1f} fps")
    if summary.watermark_id is None:
        print("watermark: off (--no-watermark); the file's metadata records that it is synthetic and unmarked")
    else:
        print(f"watermark: id {summary.watermark_id} in every frame (check with: facetalk verify {output})")


def _verify(args: argparse.Namespace) -> int:
    import json

    from facetalk.safety.verify import as_dict, describe, verify

    verdict = verify(args.video)
    if args.json:
        print(json.dumps(as_dict(verdict), indent=2))
    else:
        print("\n".join(describe(verdict)))
    return verdict.exit_code


def _eval(args: argparse.Namespace) -> None:
    import json

    from facetalk.eval.run import evaluate

    if args.reenact:
        _eval_reenact(args)
        return
    if args.from_sound and not args.transcripts:
        raise FacetalkError("--from-sound needs --transcripts DIR (the words to measure the M, B and P by)")
    report = evaluate(args.videos, args.out, controls=Controls(seed=args.seed), transcripts=args.transcripts,
                      from_sound=args.from_sound, log=lambda line: print(f"facetalk eval: {line}", file=sys.stderr))
    if args.json:
        print(json.dumps(json.loads((Path(args.out) / "report.json").read_text()), indent=2))
    else:
        print(f"wrote {Path(args.out) / 'report.md'}: {len(report['clips'])} clips measured, "
              f"{len(report['skipped'])} skipped, in {report['seconds']:.0f} s")


def _eval_reenact(args: argparse.Namespace) -> None:
    import json

    from facetalk.eval.reenact import evaluate_reenactment

    report = evaluate_reenactment(args.videos, args.reenact, args.out,
                                  log=lambda line: print(f"facetalk eval: {line}", file=sys.stderr))
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        mean = report["mean"]["mouth_corr"]
        print(f"wrote {Path(args.out) / 'reenact.md'}: {len(report['pairs'])} clip-photo pairs, mean mouth r = "
              f"{'–' if mean is None else f'{mean:.2f}'}, {len(report['skipped'])} skipped, in {report['seconds']:.0f} s")


def _serve(args: argparse.Namespace) -> None:
    from facetalk.stream.config import IceServer, ServerConfig
    from facetalk.stream.server import serve

    if not 0 < args.port < 65536:
        raise FacetalkError(f"--port must be within 1..65535, got {args.port}")
    ice = []
    for url in args.ice_server:
        if not url.startswith(("stun:", "turn:", "turns:")):
            raise FacetalkError(f"--ice-server must be a stun:, turn: or turns: URL, got {url!r}")
        turn = url.startswith("turn")
        ice.append(IceServer(url, args.ice_username if turn else None, args.ice_credential if turn else None))
    try:
        config = ServerConfig(max_sessions=args.max_sessions, ice_servers=tuple(ice))
    except ValueError as exc:
        raise FacetalkError(str(exc).replace("max_sessions", "--max-sessions")) from None
    serve(args.host, args.port, config)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "serve":
        return _run(args)
    try:
        with _signals_raise():
            return _run(args)
    except Terminated as exc:  # the writers have removed their temporary files on the way here
        print(f"facetalk: terminated by {exc}", file=sys.stderr)
        return 128 + exc.signum


def _run(args: argparse.Namespace) -> int:
    try:
        if args.command == "generate":
            _render(args.image, args.audio, args)
        elif args.command == "demo":
            assets = resources.files("facetalk.assets")
            with resources.as_file(assets / DEMO_PORTRAIT) as img, resources.as_file(assets / DEMO_VOICE) as voice:
                _render(str(img), str(voice), args)
        elif args.command == "animate":
            _animate(args)
        elif args.command == "verify":
            return _verify(args)
        elif args.command == "batch":
            from facetalk.batch.cli import batch_command

            return batch_command(args)
        elif args.command == "bench" and args.batch:
            from facetalk.batch.bench import run_batch_bench

            run_batch_bench(seconds=args.seconds, as_json=args.json)
        elif args.command == "bench" and args.watermark:
            from facetalk.bench import run_watermark_bench

            run_watermark_bench(clips=args.clips, real=args.real, as_json=args.json)
        elif args.command == "bench":
            from facetalk.bench import run_bench

            if (args.soak or args.webrtc) and not args.live:
                raise FacetalkError(f"--{'soak' if args.soak else 'webrtc'} measures live sessions: use it with --live")
            run_bench(image=args.image, seconds=args.seconds, as_json=args.json, live=args.live,
                      live_minutes=args.live_minutes, idle_minutes=args.idle_minutes, soak=args.soak, soak_minutes=args.soak_minutes,
                      clients=args.clients, max_sessions=args.max_sessions, url=args.url, webrtc=args.webrtc)
        elif args.command == "eval":
            _eval(args)
        elif args.command == "serve":
            _serve(args)
    except FacetalkError as exc:
        print(f"facetalk: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("facetalk: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug of ours: one line for users, the traceback on request
        if os.environ.get("FACETALK_DEBUG"):
            raise
        print(f"facetalk: internal error: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''} "
              "(run again with FACETALK_DEBUG=1 for details, and please report it)", file=sys.stderr)
        return 2 if args.command == "verify" else 1  # verify's 1 means "not ours": a failure is not a verdict
    return 0


if __name__ == "__main__":
    sys.exit(main())
