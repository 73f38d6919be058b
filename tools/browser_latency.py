"""What a speaker waits, in a real browser, to see their words on the lips: the live page over WebRTC
in headless Chromium (its fake microphone plays a WAV), against `facetalk serve` in its own process.

The page's latency reading (stream/static/app.js) is the server's part (from a moment of sound
arriving to its frame leaving, sent on the data channel each second), the network's round trip
(RTCPeerConnection stats) and the browser's own playout delay (requestVideoFrameCallback's
expectedDisplayTime - receiveTime): sound in to frame on screen, less the microphone's capture.
This samples it four times a second once frames flow, and prints p50 / p95 / max with the frame
rate and the video's size (a busy server sheds load by halving both); and the lips against the
sound as Chromium plays them (`estimatedPlayoutTimestamp` of the video track minus the audio's).

    .venv/bin/python tools/browser_latency.py --seconds 20      # needs /usr/bin/chromium (make setup)
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from facetalk.stream.bench import start_server, stop_server  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run",
         "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
         "--autoplay-policy=no-user-gesture-required"]
# Chromium's estimate, per track, of the sender's (NTP) time of what it plays out now: video's minus
# audio's is how far the lips are from the sound on screen. Not stepped by the 40 ms frames: Chromium
# anchors each track at its last frame out (video: at its render time; audio: each 10 ms pulled, less
# the output delay) and adds the time since, so the reading has no frame-sampling bias (bursts of
# getStats 2-3 ms apart within one frame agree to a few ms). It reads RTP stamps through the sender
# reports, not the pictures or the sound: an offset between what a packet holds and its stamp (a
# codec's delay) does not show here; stream.webrtc keeps both stamps on its media clock.
SYNC = """async () => { const r = await window.facetalkStream.pc.getStats(); let a = null, v = null;
  r.forEach((s) => { if (s.type === 'inbound-rtp' && s.estimatedPlayoutTimestamp) {
    if (s.kind === 'audio') a = s.estimatedPlayoutTimestamp; else v = s.estimatedPlayoutTimestamp; } });
  return a !== null && v !== null ? v - a : null; }"""
SAMPLE = """() => { const s = window.facetalkStream; const v = document.getElementById('remote');
  return s && s.latencies.length ? {ms: s.latencies[s.latencies.length - 1][1], server: s.serverMs,
    rtt: s.rttMs || 0, fps: Number(document.getElementById('fps').textContent) || 0,
    size: v.videoWidth} : null; }"""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=20.0, help="how long to sample once frames flow")
    ap.add_argument("--wav", default=str(ROOT / "facetalk" / "assets" / "voice.wav"), help="the fake microphone's sound")
    ap.add_argument("--trace", type=Path, help="also write every sample (seconds since sampling began, readings) "
                    "to this JSON file")
    args = ap.parse_args(argv)
    from playwright.sync_api import sync_playwright

    proc, base = start_server(max_sessions=2)
    try:
        with sync_playwright() as driver:
            browser = driver.chromium.launch(executable_path=CHROMIUM,
                                             args=FLAGS + [f"--use-file-for-fake-audio-capture={args.wav}"])
            page = browser.new_page()
            page.goto(base + "/")
            page.click("#use-default")
            page.wait_for_function("document.getElementById('state').textContent === 'ready'", timeout=60_000)
            page.click("#mic")
            page.wait_for_function("Number(document.getElementById('frames').textContent) > 50", timeout=60_000)
            samples = []
            began = time.monotonic()
            while time.monotonic() < began + args.seconds:
                s = page.evaluate(SAMPLE)
                if s:
                    samples.append({**s, "sync": page.evaluate(SYNC), "t": round(time.monotonic() - began, 3)})
                time.sleep(0.25)
            browser.close()
    finally:
        stop_server(proc)
    if not samples:
        print("no latency reading came from the page", file=sys.stderr)
        return 1
    ms = np.array([s["ms"] for s in samples])
    out = {"browser_latency_p50_ms": round(float(np.percentile(ms, 50)), 1),
           "browser_latency_p95_ms": round(float(np.percentile(ms, 95)), 1),
           "browser_latency_max_ms": round(float(ms.max()), 1),
           "server_part_p50_ms": round(float(np.median([s["server"] for s in samples])), 1),
           "rtt_ms": round(float(np.median([s["rtt"] for s in samples])), 2),
           "fps_median": float(np.median([s["fps"] for s in samples])),
           "video_sizes": sorted({s["size"] for s in samples}), "samples": len(samples)}
    sync = np.array([s["sync"] for s in samples if s["sync"] is not None], np.float64)
    if len(sync):
        out.update({f"lips_minus_sound_ms_{name}": round(float(np.percentile(sync, q)), 1)
                    for name, q in (("p5", 5), ("median", 50), ("p95", 95))}, sync_samples=len(sync))
    if args.trace:
        args.trace.write_text(json.dumps(samples))
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
