"""The lips at every M, B and P of a voice whose words are known: a strip of mouth crops, from the
sound alone (above) and with the words (`generate --text`, below), each at the frame where the
words' alignment puts the closure (`visemes.bilabial_closures`).

    python tools/closure_sheet.py docs/text_closures.png        # the README's: the built-in demo
    python tools/closure_sheet.py OUT.png --image PHOTO --audio VOICE --text "THE WORDS" [--count 8]

A mouth that shuts shows no teeth and no dark line between the lips; the README's sheet is the
built-in portrait, which smiles with its teeth showing, the hardest case for a closure.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from facetalk.audio.transcript import align_phones  # noqa: E402
from facetalk.eval.dlib_face import DlibFace  # noqa: E402
from facetalk.media.audio import read_audio  # noqa: E402
from facetalk.media.image import write_image  # noqa: E402
from facetalk.motion.controls import Controls  # noqa: E402
from facetalk.motion.fitted import fitted  # noqa: E402
from facetalk.motion.generate import generate  # noqa: E402
from facetalk.motion.visemes import bilabial_closures  # noqa: E402
from facetalk.pipeline import features_for, frames, rig_from_photo  # noqa: E402

# what tools/make_demo_voice.sh had espeak-ng say into facetalk/assets/voice.wav
DEMO_TEXT = (ROOT / "facetalk" / "assets" / "voice.txt").read_text(encoding="utf-8").strip()
FPS = 25.0
CELL = 210  # px of each crop's side


def bilabial_frames(audio: Path, text: str) -> list[int]:
    """The middle frame of each run of frames the mouth layer shuts for an M, B or P of the words."""
    samples = read_audio(audio, rate=16000)
    phones = align_phones(samples, text)
    if phones is None:
        raise SystemExit("closure_sheet: the words do not align to the voice; check --text")
    n = int(len(samples) / 16000 * FPS)
    shut = np.concatenate([[False], bilabial_closures(phones, n, FPS, 0, fitted().coarticulation[1]), [False]])
    edges = np.flatnonzero(np.diff(shut.astype(np.int8)))
    return [int(a + b - 1) // 2 for a, b in zip(edges[::2], edges[1::2])]


def mouth_crops(image: Path, audio: Path, text: str | None, at: list[int]) -> list[np.ndarray]:
    rig, _ = rig_from_photo(image)
    features, _ = features_for(audio, FPS, text)
    track = generate(features, Controls())
    wanted = set(at)
    rendered = {i: f for i, f in enumerate(frames(rig, track)) if i in wanted}
    faces, crops = DlibFace.load(), []
    for i in at:
        found = faces.landmarks(np.ascontiguousarray(rendered[i]))
        if not found:
            raise SystemExit(f"closure_sheet: no face found in frame {i}")
        lips = found[0][48:68]
        half = int(0.8 * np.ptp(lips[:, 0]))  # the mouth, with the nose tip and the chin around it
        x0, y0 = int(lips[:, 0].mean()) - half, int(lips[:, 1].mean()) - half
        crop = rendered[i][max(0, y0):y0 + 2 * half, max(0, x0):x0 + 2 * half]
        crops.append(cv2.resize(crop, (CELL, CELL), interpolation=cv2.INTER_AREA))
    return crops


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--image", type=Path, default=ROOT / "facetalk" / "assets" / "portrait.png")
    ap.add_argument("--audio", type=Path, default=ROOT / "facetalk" / "assets" / "voice.wav")
    ap.add_argument("--text", default=DEMO_TEXT)
    ap.add_argument("--count", type=int, default=8, help="at most this many M, B and P, spread over the voice")
    args = ap.parse_args(argv)
    at = bilabial_frames(args.audio, args.text)
    at = [at[int(k)] for k in np.linspace(0, len(at) - 1, min(args.count, len(at)))]
    rows = [np.hstack(mouth_crops(args.image, args.audio, text, at)) for text in (None, args.text)]
    write_image(args.out, np.vstack(rows))
    print(f"wrote {args.out}: frames {at} (M, B, P), above from the sound, below with the words")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
