"""The invisible watermark: payload coding, embedding (invisible, cheap to call), and detection
through the attacks a re-uploader makes, with no detection on unmarked video."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from facetalk.media.video import VideoWriter, sample_video_frames
from facetalk.safety import payload as code
from facetalk.safety.attacks import ATTACKS, decode_luma, encode_h264
from facetalk.safety.detect import THRESHOLD, confidence, detect, false_alarm_chance
from facetalk.safety.label import burn_label, label_box
from facetalk.safety.payload import Payload
from facetalk.safety.watermark import Watermarker
from helpers import decoded_frames

PAYLOAD = Payload(0x5EED_CAFE)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b) ** 2))
    return 10 * np.log10(255.0**2 / mse)


def write(path: Path, frames: list[np.ndarray]) -> Path:
    h, w = frames[0].shape[:2]
    with VideoWriter(path, w, h, fps=25.0) as writer:
        for f in frames:
            writer.write(f)
    return path


@pytest.fixture(scope="module")
def clean(rig, short_voice_wav: Path) -> list[np.ndarray]:
    """2.5 s of what facetalk renders for the built-in portrait, unmarked."""
    from facetalk.motion.controls import Controls
    from facetalk.motion.generate import generate
    from facetalk.pipeline import features_from_audio, frames

    return list(frames(rig, generate(features_from_audio(short_voice_wav, 25.0), Controls(seed=3))))


@pytest.fixture(scope="module")
def marked(clean: list[np.ndarray]) -> list[np.ndarray]:
    marker = Watermarker(PAYLOAD)
    return [marker.mark(f) for f in clean]


@pytest.fixture(scope="module")
def marked_file(marked: list[np.ndarray], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The marked clip as facetalk's writer stores it (H.264 CRF 20)."""
    return write(tmp_path_factory.mktemp("wm") / "marked.mp4", marked)


@pytest.fixture(scope="module")
def unmarked_file(clean: list[np.ndarray], tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write(tmp_path_factory.mktemp("wm") / "unmarked.mp4", clean)


# --- payload ------------------------------------------------------------------------------------

def test_payload_carries_version_and_id() -> None:
    p = Payload(0xDEADBEEF)
    assert p.hex_id == "deadbeef" and p.version == code.FORMAT_VERSION
    assert code.parse_message(code.message_bits(p)) == p
    assert code.MESSAGE_BITS >= 32 + 4
    assert len({Payload.new().ident for _ in range(20)}) == 20  # fresh ids
    frame = np.arange(12, dtype=np.uint8)
    assert Payload.of("settings", frame) == Payload.of("settings", frame.copy())  # same render, same id
    assert Payload.of("settings", frame) != Payload.of("settings", frame + 1)
    assert Payload.of("ab", "c") != Payload.of("a", "bc")
    with pytest.raises(ValueError):
        Payload(1 << 32)


def test_viterbi_recovers_noisy_payloads_and_crc_rejects_garbage() -> None:
    rng = np.random.default_rng(0)
    for _ in range(30):
        p = Payload.new()
        signal = 1.0 - 2.0 * code.encode(p)
        assert code.decode(1.6 * signal + rng.standard_normal(code.CODED_BITS)) == p
    bits = code.message_bits(PAYLOAD)
    bits[5] ^= 1
    assert code.parse_message(bits) is None
    garbage = [code.decode(rng.standard_normal(code.CODED_BITS)) for _ in range(200)]
    assert sum(g is not None for g in garbage) <= 6  # CRC-8: ~1/256 pass by chance


# --- embedding ----------------------------------------------------------------------------------

def test_mark_is_invisible_by_psnr_and_keeps_the_frame(clean: list[np.ndarray], marked: list[np.ndarray]) -> None:
    for a, b in zip(clean, marked):
        assert b.shape == a.shape and b.dtype == np.uint8
        assert psnr(a, b) >= 40.0
    # the same offset goes to R, G and B: no colour change (saturation aside)
    d = marked[0].astype(np.int16) - clean[0]
    inside = (clean[0] > 10).all(axis=2) & (clean[0] < 245).all(axis=2)
    assert np.array_equal(d[..., 0][inside], d[..., 1][inside])


def test_mark_is_weak_in_flat_areas_and_strong_in_texture() -> None:
    rng = np.random.default_rng(1)
    frame = np.full((256, 512, 3), 128, np.uint8)
    frame[:, :256] = np.clip(128 + rng.normal(0, 25, (256, 256, 1)), 0, 255).astype(np.uint8)
    out = Watermarker(PAYLOAD).mark(frame)
    d = out.astype(np.float64) - frame
    flat, texture = d[32:-32, 288:-32].std(), d[32:-32, 32:224].std()
    assert flat < 1.0  # a flat mid-grey wall gets well under one grey level
    assert texture > 2.5 * flat


def test_mark_rejects_what_is_not_a_frame() -> None:
    marker = Watermarker(PAYLOAD)
    with pytest.raises(ValueError, match="uint8"):
        marker.mark(np.zeros((64, 64, 3), np.float32))
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        marker.mark(np.zeros((64, 64), np.uint8))
    with pytest.raises(ValueError, match="too small"):
        marker.mark(np.zeros((8, 64, 3), np.uint8))


def test_round_trip_on_odd_full_frame_sizes(clean: list[np.ndarray]) -> None:
    """--full-frame writes photo-sized frames: the tile keeps its pixel period on any size."""
    import cv2

    big = [cv2.resize(f, (998, 702)) for f in clean[:12]]
    marker = Watermarker(PAYLOAD)
    found = detect(marker.mark(f) for f in big)
    assert found.found and found.payload == PAYLOAD
    assert found.scale == pytest.approx(1.0, abs=0.01)


# --- detection ----------------------------------------------------------------------------------

def test_round_trip_through_the_writer(marked_file: Path) -> None:
    d = detect(sample_video_frames(marked_file, 96))
    assert d.found and d.payload == PAYLOAD
    assert d.score > 12 and d.confidence > 0.9999
    assert d.scale == pytest.approx(1.0, abs=0.01)


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_survives_attack(attack: str, marked_file: Path) -> None:
    frames = decoded_frames(marked_file)
    d = detect(decode_luma(ATTACKS[attack](frames, np.random.default_rng(5))))
    assert d.found, f"{attack}: score {d.score:.1f} < {THRESHOLD}"
    assert d.payload == PAYLOAD
    if "256" in attack or "downscale" in attack:
        assert d.scale == pytest.approx(0.5, abs=0.01)


def test_no_detection_on_unmarked_video(unmarked_file: Path) -> None:
    frames = decoded_frames(unmarked_file)
    rng = np.random.default_rng(2)
    candidates = {
        "as written": detect(sample_video_frames(unmarked_file, 96)),
        "re-encoded": detect(decode_luma(ATTACKS["reencode_crf28"](frames, rng))),
        "downscaled": detect(decode_luma(ATTACKS["reencode_downscale"](frames, rng))),
        "noise": detect(decode_luma(encode_h264([rng.integers(0, 256, (256, 256, 3), np.uint8)
                                                 for _ in range(10)]))),
    }
    for name, d in candidates.items():
        assert not d.found and d.payload is None, f"{name}: score {d.score:.1f}"
        assert d.score < THRESHOLD - 0.5 and d.confidence < 0.5


def test_no_detection_on_real_videos(shared_eval: Path) -> None:
    videos = sorted(p for p in (shared_eval / "video_real").iterdir() if p.is_file())
    assert videos
    for video in videos:
        d = detect(sample_video_frames(video, 48))
        assert not d.found, f"{video.name}: score {d.score:.1f}"


def test_confidence_follows_the_score() -> None:
    scores = np.linspace(4, 12, 33)
    conf = [confidence(s) for s in scores]
    assert all(b >= a for a, b in zip(conf, conf[1:]))
    assert confidence(5.0) == 0.0 and confidence(THRESHOLD) > 0.99 and confidence(9.0) > 0.999999
    assert false_alarm_chance(THRESHOLD) < 1e-4 < false_alarm_chance(6.0) < 0.05
    # a payload that passes its CRC is evidence of its own: 1 in 256 by chance
    assert false_alarm_chance(6.0, payload_ok=True) == pytest.approx(false_alarm_chance(6.0) / 256)
    assert confidence(6.2, payload_ok=True) > 0.99 > confidence(6.2)


# --- visible label ------------------------------------------------------------------------------

def test_label_changes_a_small_corner_only(clean: list[np.ndarray]) -> None:
    frame = clean[0]
    out = burn_label(frame)
    changed = np.argwhere((out != frame).any(axis=2))
    h, w = frame.shape[:2]
    x0, y0, x1, y1 = label_box(h, w)[:4]
    assert changed[:, 0].min() >= y0 and changed[:, 0].max() < y1
    assert changed[:, 1].min() >= x0 and changed[:, 1].max() < x1
    assert y0 > h * 0.85 and x0 > w * 0.6  # bottom-right, small
    box = out[y0:y1, x0:x1].astype(np.int16)
    assert (box.max(axis=2) > 230).sum() > 40  # white text is drawn
    assert np.array_equal(frame, clean[0])  # input untouched
