"""Controls: each one moves its own measure, in the right direction, and leaves the others alone.

Curves are checked on the generated MotionTrack; what a viewer sees (irises, face size, mouth
corners) is checked on rendered frames with MediaPipe's landmarks, a measure independent of the
renderer's own mesh.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from facetalk.audio.features import audio_features
from facetalk.eval.mp_face import iris_offset
from facetalk.face import landmarks as L
from facetalk.face.detect import mesh_landmarks
from facetalk.motion.controls import ControlTrack, Controls, control_curves
from facetalk.motion.emotion import EMOTIONS, parse_emotion
from facetalk.motion.generate import generate
from facetalk.motion.track import EXPRESSIONS, Motion
from facetalk.render.renderer import Renderer

FPS = 25.0


@pytest.fixture(scope="module")
def speech(voice: np.ndarray):
    return audio_features([voice[: 16000 * 6]], 16000, FPS)


@pytest.fixture(scope="module")
def renderer(rig) -> Renderer:
    return Renderer(rig)


def measures(frame: np.ndarray) -> dict[str, float]:
    """What a viewer would judge, from MediaPipe's landmarks of a rendered frame."""
    found = mesh_landmarks(frame)
    assert found, "no face found in the rendered frame"
    p = found[0][:, :2].astype(np.float64)
    iod = float(np.linalg.norm(p[L.IRIS_L_CENTER] - p[L.IRIS_R_CENTER]))
    # face width between the cheek points: MediaPipe's eye corners drift with the irises themselves
    # (2-3 % for a 25-degree gaze), which is not the face changing size
    face_width = float(np.linalg.norm(p[234] - p[454]))
    corners = p[list(L.MOUTH_CORNERS)].mean(0)
    lip_mid = (p[L.UPPER_LIP_MID] + p[L.LOWER_LIP_MID]) / 2
    face_h = float(np.linalg.norm(p[L.FOREHEAD] - p[L.CHIN]))
    brow = p[list(L.BROW_L + L.BROW_R)][:, 1].mean()
    eyes = p[list(L.EYE_L + L.EYE_R)][:, 1].mean()
    gaze = iris_offset(p)
    return {"gaze_x": float(gaze[0]), "gaze_y": float(gaze[1]), "size": face_width,
            "corner_lift": float((lip_mid[1] - corners[1]) / face_h), "iod": iod,
            "brow_height": float((eyes - brow) / face_h)}


def frame_for(renderer: Renderer, speech, controls: Controls, i: int = 10) -> np.ndarray:
    return renderer.render(generate(speech, controls).frame(i))


BASE = dict(pose_lock=True, blink=False)  # hold the head and lids so only the control differs


@pytest.fixture(scope="module")
def neutral(renderer: Renderer, speech) -> dict[str, float]:
    return measures(frame_for(renderer, speech, Controls(**BASE)))


def test_gaze_moves_the_irises_and_nothing_else(renderer, speech, neutral) -> None:
    right = measures(frame_for(renderer, speech, Controls(gaze=(25, 0), **BASE)))
    left = measures(frame_for(renderer, speech, Controls(gaze=(-25, 0), **BASE)))
    up = measures(frame_for(renderer, speech, Controls(gaze=(0, 15), **BASE)))
    assert right["gaze_x"] > neutral["gaze_x"] + 0.04 > left["gaze_x"] + 0.08
    assert up["gaze_y"] < neutral["gaze_y"] - 0.01  # image y grows downwards
    for m in (right, left):
        assert abs(m["size"] / neutral["size"] - 1) < 0.02
        assert abs(m["corner_lift"] - neutral["corner_lift"]) < 0.01


def test_distance_changes_face_size_and_nothing_else(renderer, speech, neutral) -> None:
    near = measures(frame_for(renderer, speech, Controls(distance=0.8, **BASE)))
    far = measures(frame_for(renderer, speech, Controls(distance=1.3, **BASE)))
    assert near["size"] / neutral["size"] == pytest.approx(1 / 0.8, rel=0.05)
    assert far["size"] / neutral["size"] == pytest.approx(1 / 1.3, rel=0.05)
    for m in (near, far):
        assert abs(m["gaze_x"] - neutral["gaze_x"]) < 0.03
        assert abs(m["corner_lift"] - neutral["corner_lift"]) < 0.01


def test_distance_adds_perspective(rig) -> None:
    """Closer, the nose grows a little more than the face around it."""
    from facetalk.render.deform import deform, mesh_geometry

    geo = mesh_geometry(rig)
    dst, _, _ = deform(rig, geo, Motion(scale=1.25))
    base, _, _ = deform(rig, geo, Motion())
    c = geo.zoom_centre
    growth = np.linalg.norm(dst[:478] - c, axis=1) / np.maximum(np.linalg.norm(base[:478] - c, axis=1), 1e-6)
    nose, cheek = growth[L.NOSE_TIP], growth[234]
    assert nose > 1.25 > cheek


def test_happy_raises_the_mouth_corners_sad_lowers_them(renderer, speech, neutral) -> None:
    happy = measures(frame_for(renderer, speech, Controls(emotion="happy", **BASE)))
    sad = measures(frame_for(renderer, speech, Controls(emotion="sad", **BASE)))
    assert happy["corner_lift"] > neutral["corner_lift"] + 0.005
    assert sad["corner_lift"] < neutral["corner_lift"] - 0.005
    for m in (happy, sad):
        assert abs(m["size"] / neutral["size"] - 1) < 0.02


def test_surprise_raises_the_brows_anger_lowers_them(renderer, speech, neutral) -> None:
    surprised = measures(frame_for(renderer, speech, Controls(emotion="surprised", **BASE)))
    angry = measures(frame_for(renderer, speech, Controls(emotion="angry", **BASE)))
    assert surprised["brow_height"] > neutral["brow_height"] + 0.005
    assert angry["brow_height"] < neutral["brow_height"] - 0.003


def test_emotion_intensity_scales_the_offset(speech) -> None:
    """The emotion's offset is its baseline: the speech-driven smiles come and go above it."""
    smile = EXPRESSIONS.index("mouthSmileL")
    half = generate(speech, Controls(emotion="happy:0.5")).values[:, 6 + smile]
    full = generate(speech, Controls(emotion="happy")).values[:, 6 + smile]
    assert half.min() == pytest.approx(0.45, abs=1e-5) and full.min() == pytest.approx(0.9, abs=1e-5)
    assert (full >= half - 1e-6).all()


def test_emotion_sets_how_often_the_speech_smiles(speech) -> None:
    def smiling(emotion: str) -> float:
        curves = [generate(speech, Controls(emotion=emotion, seed=s)).values[:, 6 + EXPRESSIONS.index("mouthSmileL")]
                  for s in range(6)]
        return float(np.mean([c - c.min() for c in curves]))
    assert smiling("happy:0.6") > 1.3 * smiling("neutral") > 1.3 * smiling("sad:0.6")


def test_emotion_moves_the_head(speech) -> None:
    sad = generate(speech, Controls(emotion="sad", seed=2))
    happy = generate(speech, Controls(emotion="happy", seed=2))
    assert sad.column("pitch").mean() < happy.column("pitch").mean() - 3
    assert sad.column("yaw").std() < happy.column("yaw").std()  # a sad head moves less


def test_pose_lock_holds_the_head_but_not_the_face(speech) -> None:
    track = generate(speech, Controls(pose_lock=True, emotion="sad"))
    for name in ("yaw", "pitch", "roll", "tx", "ty"):
        assert np.all(track.column(name) == 0)
    assert track.column("jawOpen").max() > 0.2 and track.column("eyeBlinkL").max() > 0.5


def test_keyframed_controls_blend_between_keys(speech) -> None:
    keys = ControlTrack(((1.0, Controls()), (3.0, Controls(emotion="happy", gaze=(20, 0), distance=0.8))))
    curves = control_curves(keys, len(speech), FPS)
    smile = curves.expression[:, EXPRESSIONS.index("mouthSmileL")]
    full = EMOTIONS["happy"].expression["mouthSmileL"]
    assert smile[0] == 0 and smile[int(2.0 * FPS)] == pytest.approx(full / 2) and smile[-1] == pytest.approx(full)
    assert curves.gaze_yaw[int(2.0 * FPS)] == pytest.approx(10.0)
    assert curves.distance[-1] == pytest.approx(0.8)
    track = generate(speech, keys)
    assert track.column("scale")[0] == pytest.approx(1.0) and track.column("scale")[-1] == pytest.approx(1.25)


def test_keyframes_must_be_in_order() -> None:
    with pytest.raises(ValueError):
        ControlTrack(((2.0, Controls()), (1.0, Controls())))
    with pytest.raises(ValueError):
        ControlTrack(())


@pytest.mark.parametrize("kwargs", [dict(gaze=(31, 0)), dict(gaze=(0, -25)), dict(distance=0.3),
                                    dict(distance=2.5), dict(emotion="joy"), dict(emotion="happy:2"),
                                    dict(emotion="happy:x")])
def test_controls_reject_out_of_range_values(kwargs) -> None:
    with pytest.raises(ValueError):
        Controls(**kwargs)


def test_parse_emotion() -> None:
    assert parse_emotion("happy") == ("happy", 1.0)
    assert parse_emotion(" Sad:0.25 ") == ("sad", 0.25)


@pytest.mark.parametrize("flag", [["--gaze", "40,0"], ["--gaze", "left"], ["--distance", "9"], ["--emotion", "joy"]])
def test_cli_rejects_bad_controls_in_one_line(tmp_path: Path, flag: list[str]) -> None:
    out = tmp_path / "x.mp4"
    res = subprocess.run([sys.executable, "-m", "facetalk.cli", "demo", "-q", "-o", str(out), *flag],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode != 0
    assert len(res.stderr.strip().splitlines()) == 1 and "error" in res.stderr
    assert not out.exists()


def test_controls_steer_a_driven_track_too() -> None:
    from facetalk.motion.encode import with_controls
    from facetalk.motion.track import MotionTrack

    n = 50
    t = np.arange(n) / FPS
    driven = MotionTrack.neutral(n, FPS).with_columns(yaw=5 * np.sin(t), gazeYaw=2.0, eyeBlinkL=0.5, mouthClose=1.0)
    out = with_controls(driven, Controls(emotion="happy", gaze=(10, 0), distance=1.25, motion_intensity=0.5,
                                         blink=False))
    assert np.allclose(out.column("yaw"), 0.5 * 1.2 * driven.column("yaw"), atol=1e-5)  # intensity x happy's liveliness
    assert np.allclose(out.column("gazeYaw"), 12.0) and np.allclose(out.column("scale"), 0.8)
    assert np.all(out.column("eyeBlinkL") == 0) and np.all(out.column("mouthSmileL") > 0.8)
    assert np.all(out.column("mouthClose") == 1.0)
    locked = with_controls(driven, Controls(pose_lock=True))
    assert np.all(locked.column("yaw") == 0)
