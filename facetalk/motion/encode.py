"""Tracked landmarks -> MotionTrack: the encoder of DESIGN.md, which powers reenactment.

Everything is measured on the driver against the driver's own first frame with a face (its
"reference"), so the driver's identity cancels and only its motion is carried over to the photo:

- Pose: a similarity fit to the canonical face (`fit_pose`) weighted to the points no expression
  moves (nose, temples, forehead), so an opening jaw does not read as a nod. Angles are the
  rotation since the reference, translation is the move of the head's pivot in crop widths of the
  driver's face (a crop as the FaceRig's: the face half its width), scale the ratio of fit scales.
- Expression: bounded least squares (coefficients in [0, 1]) of the canonical-frame landmark
  offsets on the displacement basis built from the driver's own neutral face: the early face
  (first NEUTRAL_WINDOW_S seconds) with the lips most nearly shut and the eyes open, since a clip
  that starts mid-word or mid-blink would otherwise make its first frame the zero.
- Mouth: *absolute*, not relative. The neutral face has its lips shut (the `mouthClose` field
  applied to it, in case they never fully met), and the output carries mouthClose = 1, which
  shuts the photo's own lip gap too. So the photo's lips part exactly when and as far as the driver's do:
  a driver whose first frame is mid-word still closes the photo's mouth on every M, and a photo
  taken mid-word still closes. Relative to an open first frame, every closure would instead read
  as a negative (clipped) opening and the photo's own gap would never shut.
- Gaze: iris centres against the eye corners in the canonical frame, relative to the reference,
  turned into eyeball angles.

Curves are smoothed with a zero-phase Gaussian (the whole track is known), which takes out
landmark jitter without delaying the lips; the mouth and lids get the lightest touch (a blink
lasts three frames). Frames without a face are interpolated from their neighbours and held at
the ends.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from scipy.linalg import cho_factor, cho_solve
from scipy.optimize import lsq_linear

from facetalk.face import landmarks as L
from facetalk.face.basis import build_basis, mouth_close
from facetalk.face.pose import HeadPose, fit_pose, rotation_angles
from facetalk.motion.controls import ControlTrack, Controls, control_curves, with_expression_offsets
from facetalk.face.rig import FACE_SHARE, PIVOT_CM
from facetalk.motion.track import COLUMNS, EXPRESSIONS, GAZE, POSE, MotionTrack

EYEBALL_RADIUS_CM = 1.2  # an iris moves r*sin(angle) when the eye turns (the renderer's eyeball, render/eyes.py)
RIGID_CM = 0.03  # a point that no expression field moves further than this carries the pose fit
RIDGE = 1e-3  # keeps overlapping fields (smile vs stretch) from cancelling each other
LIP_WEIGHT = 3.0  # the lips decide the mouth's coefficients more than the cheeks they drag along
GAP_WEIGHT = 10.0  # the inner-lip gap as one more equation, worth 100 coordinates: the photo's lips
# must part as far as the driver's, whichever fields the rest of the face prefers for it
SMOOTH_S = {"pose": 0.04, "expression": 0.02, "gaze": 0.06}  # Gaussian sigma of each group, seconds
NEUTRAL_WINDOW_S = 2.0  # the neutral face is chosen among the first seconds with a face
EYES_OPEN_SHARE = 0.8  # of the widest eye opening in that window: eyes count as open
SHUT_QUANTILE = 0.25  # the neutral face's lips are among the most nearly shut quarter of the window
LIMITS = {  # what the renderer draws well; a driver beyond is held at the edge
    "yaw": (-35.0, 35.0), "pitch": (-25.0, 25.0), "roll": (-30.0, 30.0),
    "tx": (-0.25, 0.25), "ty": (-0.25, 0.25), "scale": (0.7, 1.4),
    "gazeYaw": (-30.0, 30.0), "gazePitch": (-25.0, 25.0),
}
_GAP_UPPER, _GAP_LOWER = list(L.LIPS_INNER_UPPER[4:7]), list(L.LIPS_INNER_LOWER[6:3:-1])
_EYES = ((L.IRIS_R_CENTER, 33, 133), (L.IRIS_L_CENTER, 362, 263))  # iris, eye corners
_FIT = [i for i, name in enumerate(EXPRESSIONS) if name != "mouthClose"]
_CLOSE = EXPRESSIONS.index("mouthClose")
_COL = {name: i for i, name in enumerate(COLUMNS)}

# What each part of the motion is, for taking only some of it from a driver.
MOUTH = ("jawOpen", "mouthClose", "mouthFunnel", "mouthPucker", "mouthSmileL", "mouthSmileR",
         "mouthStretchL", "mouthStretchR", "mouthPress", "upperLipUp", "lowerLipDown")
PARTS = {"pose": POSE, "expression": EXPRESSIONS + GAZE, "lips": MOUTH}
ALL_PARTS = ("pose", "expression")  # "lips" is a subset of "expression"


@dataclass(frozen=True)
class DriverReference:
    """What every frame of a driver is measured against: its first face for the pose, its most
    neutral early face (lips shut, eyes open) for the expression and gaze."""

    pose: HeadPose  # the first face's pose
    crop_side: float  # px: side of a FaceRig-style crop around the first face
    neutral: np.ndarray  # (478, 3) cm: the neutral face with its lips shut
    basis: np.ndarray  # (E, 478, 3) cm: expression fields on `neutral`
    rigid: np.ndarray  # (468,) pose-fit weights: 1 on points expression leaves alone
    irises: np.ndarray  # (2, 2) cm: iris offsets from the eye centres of the neutral face
    factor: tuple  # Cholesky factor of the expression fit's normal matrix
    design: np.ndarray  # (E-1, 478*3) weighted basis: design @ offsets = the fit's right-hand side
    gap_design: np.ndarray  # (E-1,) weighted lip-gap change of each field: the same for the lip gap

    def fit(self, shape: np.ndarray) -> np.ndarray:
        """Expression coefficients (EXPRESSIONS order, mouthClose = 1) of a canonical shape."""
        rhs = self.design @ (shape - self.neutral)[:L.N_MESH].reshape(-1) + self.gap_design * lip_gap(shape)
        coef = np.ones(len(EXPRESSIONS))
        unbounded = cho_solve(self.factor, rhs)
        if np.all((unbounded >= 0) & (unbounded <= 1)):
            coef[_FIT] = unbounded
            return coef
        # The same optimum as a small problem: with A^T A = U^T U, |A c - b|^2 = |U c - U^-T A^T b|^2 + const.
        c, lower = self.factor
        upper = np.triu(c.T if lower else c)
        coef[_FIT] = lsq_linear(upper, np.linalg.solve(upper.T, rhs), bounds=(0.0, 1.0), method="bvls").x
        return coef


def _point_weights() -> np.ndarray:
    w = np.ones(L.N_MESH)
    w[list(L.LIPS_INNER) + list(L.LIPS_OUTER)] = LIP_WEIGHT
    return w


def lip_gap(shape: np.ndarray) -> np.ndarray:
    """Inner-lip gap (cm) of canonical shapes (..., 478, 3): the middle three lip pairs, as dlib's
    mouth-opening measure takes them."""
    return (shape[..., _GAP_UPPER, 1] - shape[..., _GAP_LOWER, 1]).mean(axis=-1)


def _iris_offsets(shape: np.ndarray) -> np.ndarray:
    """(2, 2) x, y of each iris centre from the middle of its eye corners (canonical cm)."""
    return np.array([shape[i, :2] - (shape[a, :2] + shape[b, :2]) / 2 for i, a, b in _EYES])


def neutral_index(faces: list[np.ndarray]) -> int:
    """The most neutral of some early faces: eyes open, lips shut, mouth neither pursed nor spread.

    A driver clip often starts mid-word or mid-blink; measured against such a face, every later
    closure of the lips or opening of the eyes would read as a negative (clipped) coefficient, and
    against lips pursed for an "oo" every relaxed mouth would read as a smile.
    """
    def ratios(lm: np.ndarray) -> tuple[float, float, float]:
        height = float(np.linalg.norm(lm[L.FOREHEAD, :2] - lm[L.CHIN, :2]))
        lips = float(np.linalg.norm(lm[L.UPPER_LIP_MID, :2] - lm[L.LOWER_LIP_MID, :2]))
        width = float(np.linalg.norm(lm[L.MOUTH_CORNERS[0], :2] - lm[L.MOUTH_CORNERS[1], :2]))
        eyes = float(np.linalg.norm(lm[159, :2] - lm[145, :2]) + np.linalg.norm(lm[386, :2] - lm[374, :2]))
        return lips / height, width / height, eyes / height

    lips, width, eyes = np.array([ratios(lm) for lm in faces]).T
    ok = eyes >= EYES_OPEN_SHARE * eyes.max()
    ok &= lips <= np.quantile(lips[ok], SHUT_QUANTILE)
    candidates = np.flatnonzero(ok)
    return int(candidates[np.argmin(np.abs(width[candidates] - np.median(width)))])


def reference(first: np.ndarray, neutral: np.ndarray | None = None) -> DriverReference:
    """The reference from the driver's first face and its neutral face ((478, 3) frame px each;
    the first face serves as both when no neutral face is given)."""
    neutral = first if neutral is None else neutral
    shape = fit_pose(neutral).to_canonical(neutral)
    reach = np.abs(build_basis(shape)[:, :L.N_MESH]).max(axis=(0, 2))
    rigid = np.where(reach < RIGID_CM, 1.0, 0.02)
    shape = fit_pose(neutral, rigid).to_canonical(neutral)  # again, on the points expression leaves alone
    shut = shape + mouth_close(shape)
    basis = build_basis(shut)
    w = np.sqrt(np.repeat(_point_weights(), 3))
    a = basis[_FIT][:, :L.N_MESH].reshape(len(_FIT), -1).astype(np.float64) * w  # (E-1, 3N)
    gap = GAP_WEIGHT * (lip_gap(shut + basis[_FIT]) - lip_gap(shut))  # (E-1,) each field's opening
    normal = a @ a.T + np.outer(gap, gap)
    normal += RIDGE * np.trace(normal) / len(_FIT) * np.eye(len(_FIT))
    pose = fit_pose(first, rigid)
    first_shape = pose.to_canonical(first)
    width_cm = float(np.linalg.norm(first_shape[454] - first_shape[234]))
    return DriverReference(pose=pose, crop_side=width_cm * pose.scale / FACE_SHARE, neutral=shut, basis=basis,
                           rigid=rigid, irises=_iris_offsets(shape), factor=cho_factor(normal), design=a * w,
                           gap_design=gap * GAP_WEIGHT)


def encode_frame(ref: DriverReference, landmarks: np.ndarray) -> np.ndarray:
    """One frame's motion row (len(COLUMNS),) relative to the reference, unclipped and unsmoothed."""
    pose = fit_pose(landmarks, ref.rigid)
    row = np.zeros(len(COLUMNS))
    yaw, pitch, roll = rotation_angles(pose.rotation @ ref.pose.rotation.T)
    move = pose.to_camera(PIVOT_CM[None, :])[0] - ref.pose.to_camera(PIVOT_CM[None, :])[0]
    row[[_COL["yaw"], _COL["pitch"], _COL["roll"]]] = yaw, pitch, roll
    row[_COL["tx"]], row[_COL["ty"]] = move[:2] / ref.crop_side
    row[_COL["scale"]] = pose.scale / ref.pose.scale
    shape = pose.to_canonical(landmarks)
    row[len(POSE):len(POSE) + len(EXPRESSIONS)] = ref.fit(shape)
    shift = (_iris_offsets(shape) - ref.irises).mean(axis=0) / EYEBALL_RADIUS_CM
    row[_COL["gazeYaw"]], row[_COL["gazePitch"]] = np.degrees(np.arcsin(np.clip(shift, -1.0, 1.0)))
    return row


class MotionEncoder:
    """Frames in (time, landmarks or None), one MotionTrack out.

    Holds one motion row per frame, plus the landmarks of the first NEUTRAL_WINDOW_S seconds with
    a face until the neutral face among them is chosen: memory stays flat in the video's length.
    """

    def __init__(self) -> None:
        self.reference: DriverReference | None = None
        self._times: list[float] = []
        self._rows: list[np.ndarray | None] = []
        self._pending: list[tuple[int, np.ndarray]] = []  # (row index, landmarks) before the reference

    @property
    def found(self) -> int:
        """Frames with a face so far."""
        return sum(r is not None for r in self._rows) + len(self._pending)

    def push(self, time: float, landmarks: np.ndarray | None) -> None:
        self._times.append(float(time))
        self._rows.append(None)
        if landmarks is None:
            return
        if self.reference is not None:
            self._rows[-1] = encode_frame(self.reference, landmarks)
            return
        self._pending.append((len(self._rows) - 1, landmarks))
        if time - self._times[self._pending[0][0]] >= NEUTRAL_WINDOW_S:
            self._settle()

    def _settle(self) -> None:
        """Choose the neutral face among the pending ones and encode them."""
        faces = [lm for _, lm in self._pending]
        self.reference = reference(faces[0], faces[neutral_index(faces)])
        for i, lm in self._pending:
            self._rows[i] = encode_frame(self.reference, lm)
        self._pending = []

    def finish(self, fps: float, duration: float | None = None) -> MotionTrack:
        """The track at a constant `fps` over `duration` s (default: up to the last frame), sampled
        from the frames' own times (a variable-rate driver comes out evenly spaced)."""
        if self._pending:
            self._settle()
        if self.reference is None:
            raise ValueError("no frame had a face")
        times = np.asarray(self._times)
        rows = np.array([np.full(len(COLUMNS), np.nan) if r is None else r for r in self._rows])
        rows = smooth(fill_gaps(rows), times)
        if duration is None:
            step = float(np.median(np.diff(times))) if len(times) > 1 else 1.0 / fps
            duration = times[-1] - times[0] + step
        n = max(1, int(round(duration * fps)))
        at = times[0] + np.arange(n) / fps
        values = np.column_stack([np.interp(at, times, rows[:, j]) for j in range(len(COLUMNS))])
        return MotionTrack(clip_limits(values).astype(np.float32), fps)


def fill_gaps(rows: np.ndarray) -> np.ndarray:
    """Rows of NaN (no face) interpolated from the nearest faces, held before the first and after
    the last."""
    ok = np.isfinite(rows).all(axis=1)
    if ok.all() or not ok.any():
        return rows
    idx = np.arange(len(rows))
    return np.column_stack([np.interp(idx, idx[ok], rows[ok, j]) for j in range(rows.shape[1])])


def smooth(rows: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Zero-phase Gaussian smoothing of each group of columns (no lag: the whole track is known)."""
    if len(rows) < 3:
        return rows
    step = float(np.median(np.diff(times)))
    out = rows.copy()
    groups = {"pose": POSE, "expression": EXPRESSIONS, "gaze": GAZE}
    for group, names in groups.items():
        sigma = SMOOTH_S[group] / max(step, 1e-6)
        r = int(np.ceil(3 * sigma))
        if r < 1:
            continue
        k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
        k /= k.sum()
        for name in names:
            j = _COL[name]
            out[:, j] = np.convolve(np.pad(rows[:, j], r, mode="edge"), k, mode="valid")
    return out


def clip_limits(values: np.ndarray) -> np.ndarray:
    out = values.copy()
    for name, (lo, hi) in LIMITS.items():
        out[:, _COL[name]] = np.clip(out[:, _COL[name]], lo, hi)
    return out


def encode_landmarks(frames: Iterable[tuple[float, np.ndarray | None]], fps: float) -> MotionTrack:
    """(time, landmarks or None) per frame -> MotionTrack at `fps`; ValueError when no face at all."""
    encoder = MotionEncoder()
    for t, lm in frames:
        encoder.push(t, lm)
    return encoder.finish(fps)


def take_parts(track: MotionTrack, parts: Iterable[str]) -> MotionTrack:
    """The track with only `parts` (names in PARTS) kept; everything else at the photo's rest:
    head as photographed, eyes open looking ahead, lips shut (mouthClose = 1)."""
    parts = set(parts)
    unknown = parts - set(PARTS)
    if unknown or not parts:
        raise ValueError(f"parts must be some of {', '.join(PARTS)}, got {sorted(parts) or 'none'}")
    keep = {name for p in parts for name in PARTS[p]}
    rest = MotionTrack.neutral(len(track), track.fps).with_columns(mouthClose=1.0)
    values = rest.values.copy()
    idx = [_COL[name] for name in COLUMNS if name in keep]
    values[:, idx] = track.values[:, idx]
    return MotionTrack(values, track.fps)


def with_controls(track: MotionTrack, controls: Controls | ControlTrack = Controls()) -> MotionTrack:
    """Driven motion steered by the same controls as generated motion: motion_intensity scales the
    driver's head motion (pose_lock stills it), the emotion's offsets ride on the driven face and
    its tilt on the head, gaze is added to the driver's, distance scales the head, blink = False
    removes the blinks. Only the seed has nothing to act on."""
    c = control_curves(controls, len(track), track.fps)
    moving = 1.0 - c.pose_lock
    k = c.motion_intensity * c.head_gain * moving
    curves: dict[str, np.ndarray] = {name: track.column(name) * k for name in ("yaw", "tx", "ty", "roll")}
    curves["pitch"] = track.column("pitch") * k + c.head_pitch * moving
    curves["scale"] = (1.0 + (track.column("scale") - 1.0) * k) / c.distance
    curves["gazeYaw"] = track.column("gazeYaw") + c.gaze_yaw
    curves["gazePitch"] = track.column("gazePitch") + c.gaze_pitch
    for name in ("eyeBlinkL", "eyeBlinkR"):
        curves[name] = track.column(name) * c.blink
    return with_expression_offsets(track.with_columns(**curves), c.expression)
