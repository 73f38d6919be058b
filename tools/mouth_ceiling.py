"""How well can audio alone predict the real clips' mouth opening? A ceiling for `mouth_corr`.

A ridge regression from 24 log-mel bands (±160 ms of context) to each real clip's dlib mouth
opening, trained on all clips but one and tested on that one, in turn. Prints the held-out r per
clip, plain and "synced" (the real mouth moved back by its own AV offset, as mouth_corr_synced
does), and the same for the generator's jaw curve before rendering.

    .venv/bin/python tools/mouth_ceiling.py ../shared/eval/video_real
"""

from __future__ import annotations

import sys

import numpy as np
from scipy import signal

from facetalk.audio.features import audio_features
from facetalk.eval.dlib_face import DlibFace
from facetalk.eval.measure import find_reference, measure_clip
from facetalk.eval.metrics import MAX_LAG
from facetalk.eval.run import find_videos
from facetalk.eval.signals import av_sync, pearson, resample
from facetalk.media.audio import SAMPLE_RATE, read_audio
from facetalk.motion.mouth import mouth_curves

HOP = 160  # 10 ms
CONTEXT = 16  # hops each side


def mel_bank(n_mels: int = 24, n_fft: int = 512, rate: int = SAMPLE_RATE) -> np.ndarray:
    mel = lambda f: 2595 * np.log10(1 + f / 700)  # noqa: E731
    hz = 700 * (10 ** (np.linspace(mel(80), mel(7600), n_mels + 2) / 2595) - 1)
    bins = np.floor((n_fft + 1) * hz / rate).astype(int)
    bank = np.zeros((n_mels, n_fft // 2 + 1))
    for i in range(n_mels):
        a, b, c = bins[i:i + 3]
        bank[i, a:b] = (np.arange(a, b) - a) / max(b - a, 1)
        bank[i, b:c] = (c - np.arange(b, c)) / max(c - b, 1)
    return bank


def audio_rows(samples: np.ndarray, times: np.ndarray) -> np.ndarray:
    _, _, z = signal.stft(samples, SAMPLE_RATE, nperseg=400, noverlap=400 - HOP, nfft=512)
    spec = np.log(mel_bank() @ np.abs(z) ** 2 + 1e-8).T
    spec = np.maximum(spec - spec.max(), -12.0)
    idx = np.round(times * SAMPLE_RATE / HOP).astype(int)
    return np.stack([np.concatenate([spec[np.clip(i + k, 0, len(spec) - 1)] for k in range(-CONTEXT, CONTEXT + 1, 2)])
                     for i in idx])


def main(folder: str) -> None:
    faces = DlibFace.load()
    clips = []
    for path in find_videos(folder):
        ref = find_reference(path, faces)
        if ref is None:
            continue
        samples = read_audio(path)[int(round(ref.time * SAMPLE_RATE)):]
        s = measure_clip(path, path.stem, ref, faces, start=ref.time).series
        _, lag = av_sync(s.mouth, s.envelope, MAX_LAG)
        feats = audio_features([samples], SAMPLE_RATE, s.fps)
        jaw = mouth_curves(feats)["jawOpen"]
        jaw_t = np.arange(len(jaw)) / s.fps
        mouth = (s.mouth - np.nanmean(s.mouth)) / np.nanstd(s.mouth)
        clips.append((path.stem, s, lag or 0, mouth, jaw, jaw_t, samples))
    for synced in (False, True):
        xs, ys, jaws = [], [], []
        for name, s, lag, mouth, jaw, jaw_t, samples in clips:
            at = s.times - (lag / s.fps if synced else 0.0)  # where the sound of each real frame is
            xs.append(audio_rows(samples, np.clip(at, 0, None)))
            ys.append(mouth)
            jaws.append(resample(jaw_t, jaw, at))
        held_out, jaw_r = [], []
        for i in range(len(clips)):
            x = np.concatenate([x for j, x in enumerate(xs) if j != i])
            y = np.concatenate([y for j, y in enumerate(ys) if j != i])
            ok = np.isfinite(y)
            mu, sd = x[ok].mean(0), x[ok].std(0) + 1e-6
            a = (x[ok] - mu) / sd
            w = np.linalg.solve(a.T @ a + len(a) * np.eye(a.shape[1]), a.T @ y[ok])
            held_out.append(pearson(ys[i], ((xs[i] - mu) / sd) @ w))
            jaw_r.append(pearson(ys[i], jaws[i]))
        label = "synced" if synced else "plain "
        print(f"{label} ridge (held out): " + " ".join(f"{r:.2f}" for r in held_out) + f"  mean {np.mean(held_out):.2f}")
        print(f"{label} jaw curve:        " + " ".join(f"{r:.2f}" for r in jaw_r) + f"  mean {np.mean(jaw_r):.2f}")
    print("clips: " + ", ".join(c[0] for c in clips))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "../shared/eval/video_real")
