"""Write a contact sheet (a grid of frames) of a video to PNG/JPEG, to look at results.

    python tools/contact_sheet.py VIDEO OUT.png [--every N] [--count K] [--cols C] [--width W]
"""

from __future__ import annotations

import argparse

import cv2
import numpy as np

from facetalk.media.image import write_image
from facetalk.media.video import read_video_frames


def contact_sheet(video: str, every: int, count: int, cols: int, width: int) -> np.ndarray:
    frames = []
    for i, (_, frame) in enumerate(read_video_frames(video)):
        if i % every == 0:
            h = round(frame.shape[0] * width / frame.shape[1])
            frames.append(cv2.resize(frame, (width, h), interpolation=cv2.INTER_AREA))
        if len(frames) == count:
            break
    blank = np.zeros_like(frames[0])
    rows = [np.concatenate(frames[i:i + cols] + [blank] * (cols - len(frames[i:i + cols])), 1)
            for i in range(0, len(frames), cols)]
    return np.concatenate(rows, 0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("video")
    ap.add_argument("out")
    ap.add_argument("--every", type=int, default=5)
    ap.add_argument("--count", type=int, default=8)
    ap.add_argument("--cols", type=int, default=8)
    ap.add_argument("--width", type=int, default=256)
    a = ap.parse_args()
    write_image(a.out, contact_sheet(a.video, a.every, a.count, a.cols, a.width))


if __name__ == "__main__":
    main()
