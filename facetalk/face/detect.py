"""Find faces in a photo and their 478 landmarks with MediaPipe's bundled face mesh.

MediaPipe 0.10.21 ships its models inside the wheel, so this works offline. Detection runs on a
downscaled copy (huge photos), then the mesh runs on a square crop around each face so that small
faces in big photos still get precise landmarks.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

import cv2
import numpy as np

from facetalk.face.landmarks import N_LANDMARKS

DETECT_MAX_SIDE = 1024  # px: detection input size; faces stay well above the detector's minimum
SURE_SCORE = 0.9  # detections at least this confident need no second opinion
MARGIN = 0.3  # share of the photo's side added around it when no face is found without (find_faces)
HAAR_SIDE = 320  # px: the second opinion looks at the face's surroundings at this size


@dataclass(frozen=True)
class FaceBox:
    """A face's square bounding box in photo pixels (centre and side)."""

    cx: float
    cy: float
    side: float
    score: float = 0.0  # detector confidence; 0 when found by the mesh alone


@contextlib.contextmanager
def _quiet_native_logs():
    """MediaPipe's C++ code writes INFO/WARNING lines to stderr; users should not see them."""
    os.environ.setdefault("GLOG_minloglevel", "2")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        fd = os.dup(2)
    except OSError:
        yield
        return
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(fd, 2)
        os.close(fd)


def _mp():
    with _quiet_native_logs():
        import mediapipe as mp  # heavy import: only when a face is actually looked for
    return mp


def _downscale(photo: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    h, w = photo.shape[:2]
    f = min(1.0, max_side / max(h, w))
    if f == 1.0:
        return photo, 1.0
    return cv2.resize(photo, (round(w * f), round(h * f)), interpolation=cv2.INTER_AREA), f


def _mesh_boxes(image: np.ndarray) -> list[FaceBox]:
    """Face boxes from the mesh itself: it finds faces in paintings the detector misses."""
    h, w = image.shape[:2]
    boxes = []
    for pts in mesh_landmarks(image, max_faces=5):
        x0, y0 = pts[:, 0].min(), pts[:, 1].min()
        x1, y1 = pts[:, 0].max(), pts[:, 1].max()
        boxes.append(FaceBox((x0 + x1) / 2, (y0 + y1) / 2, max(x1 - x0, y1 - y0)))
    return boxes


def find_faces(photo: np.ndarray) -> list[FaceBox]:
    """All faces in an RGB photo, largest first.

    A face that fills the photo (a close selfie, a face cut out of a picture) is missed by the
    detectors, which expect some head and shoulders around it: the built-in portrait cut inside
    its cheeks and hairline came out "no face" (tests/test_face.py); with the edges carried on
    outward (MARGIN of the side each way) it is found."""
    small, f = _downscale(photo, DETECT_MAX_SIDE)
    boxes = _detect(small)
    if not boxes:
        pad = int(round(MARGIN * max(small.shape[:2])))
        boxes = [FaceBox(b.cx - pad, b.cy - pad, b.side, b.score)
                 for b in _detect(cv2.copyMakeBorder(small, pad, pad, pad, pad, cv2.BORDER_REPLICATE))]
    boxes.sort(key=lambda b: -b.side)
    return [FaceBox(b.cx / f, b.cy / f, b.side / f, b.score) for b in boxes]


def _detect(small: np.ndarray) -> list[FaceBox]:
    h, w = small.shape[:2]
    mp = _mp()
    boxes: list[FaceBox] = []
    with _quiet_native_logs():
        for model in (0, 1):  # short range, then full range for small faces
            with mp.solutions.face_detection.FaceDetection(
                model_selection=model, min_detection_confidence=0.5
            ) as det:
                res = det.process(small)
            for d in res.detections or []:
                b = d.location_data.relative_bounding_box
                side = max(b.width * w, b.height * h)
                boxes.append(FaceBox((b.xmin + b.width / 2) * w, (b.ymin + b.height / 2) * h, side,
                                     float(d.score[0])))
            if boxes:
                break
    if not boxes:
        boxes = _mesh_boxes(small)
    return [b for b in _dedupe(boxes) if b.score >= SURE_SCORE or _haar_confirms(small, b)]


def _haar_confirms(image: np.ndarray, box: FaceBox) -> bool:
    """A second, independent opinion for doubtful detections (BlazeFace takes a dog for a face).

    OpenCV's Haar cascades ship inside opencv-python-headless < 5 and know human faces only.
    """
    h, w = image.shape[:2]
    half = box.side
    x0, y0 = int(max(0, box.cx - half)), int(max(0, box.cy - half))
    x1, y1 = int(min(w, box.cx + half)), int(min(h, box.cy + half))
    roi = image[y0:y1, x0:x1]
    if roi.size == 0:
        return False
    f = HAAR_SIDE / max(roi.shape[:2])
    gray = cv2.equalizeHist(cv2.cvtColor(cv2.resize(roi, None, fx=f, fy=f), cv2.COLOR_RGB2GRAY))
    min_side = max(24, int(box.side * f * 0.4))
    for name, flip in (("frontalface_default", False), ("frontalface_alt2", False),
                       ("profileface", False), ("profileface", True)):
        cascade = cv2.CascadeClassifier(cv2.data.haarcascades + f"haarcascade_{name}.xml")
        img = cv2.flip(gray, 1) if flip else gray
        for x, y, bw, bh in cascade.detectMultiScale(img, 1.1, 4, minSize=(min_side, min_side)):
            cx = (img.shape[1] - (x + bw / 2)) if flip else x + bw / 2
            cx, cy = cx / f + x0, (y + bh / 2) / f + y0
            if abs(cx - box.cx) < box.side / 2 and abs(cy - box.cy) < box.side / 2:
                return True
    return False


def _dedupe(boxes: list[FaceBox]) -> list[FaceBox]:
    """One box per face: the most confident of those that overlap."""
    kept: list[FaceBox] = []
    for b in sorted(boxes, key=lambda b: -b.score):
        if all(np.hypot(b.cx - k.cx, b.cy - k.cy) > 0.5 * max(b.side, k.side) for k in kept):
            kept.append(b)
    return kept


def mesh_landmarks(image: np.ndarray, max_faces: int = 1) -> list[np.ndarray]:
    """478 landmarks per face as (x, y, z) pixels of `image` (z: depth, larger = farther)."""
    mp = _mp()
    h, w = image.shape[:2]
    with _quiet_native_logs(), mp.solutions.face_mesh.FaceMesh(
        static_image_mode=True, refine_landmarks=True, max_num_faces=max_faces,
        min_detection_confidence=0.3,
    ) as mesh:
        res = mesh.process(np.ascontiguousarray(image))
    out = []
    for face in res.multi_face_landmarks or []:
        pts = np.array([(p.x * w, p.y * h, p.z * w) for p in face.landmark], np.float32)
        if len(pts) == N_LANDMARKS:
            out.append(pts)
    return out


OUTSIDE_BLUR = 0.03  # blur (sd, share of the crop side) of the crop where it leaves the photo
OUTSIDE_RAMP = 0.025  # ... reached this far (share of the crop side) past the photo's edge


def crop_square(photo: np.ndarray, cx: float, cy: float, side: float, out: int) -> tuple[np.ndarray, np.ndarray]:
    """Resample the square (cx, cy, side) of `photo` to out x out; where it leaves the photo, the
    photo's edge is carried on and blurred more the farther out (`_fill_outside`).

    Returns the crop and its 2x3 affine crop->photo. Area-averaging first keeps huge photos
    from aliasing when they are shrunk several times.
    """
    scale = side / out  # photo px per crop px
    x0, y0 = cx - side / 2, cy - side / 2
    photo_src = photo
    pre = 1.0
    if scale > 2.0:  # shrink the photo's region of interest first, with area averaging
        pre = 1.0 / np.floor(scale)
        h, w = photo.shape[:2]
        xa, ya = max(0, int(x0) - 2), max(0, int(y0) - 2)
        xb, yb = min(w, int(x0 + side) + 3), min(h, int(y0 + side) + 3)
        roi = photo[ya:yb, xa:xb]
        photo_src = cv2.resize(roi, (max(1, round(roi.shape[1] * pre)), max(1, round(roi.shape[0] * pre))),
                               interpolation=cv2.INTER_AREA)
        x0, y0 = (x0 - xa) * pre, (y0 - ya) * pre
        s2 = scale * pre
        m = np.array([[s2, 0, x0], [0, s2, y0]], np.float64)
        crop = cv2.warpAffine(photo_src, m, (out, out), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                              borderMode=cv2.BORDER_REPLICATE)
        crop_to_photo = np.array([[scale, 0, cx - side / 2], [0, scale, cy - side / 2]], np.float64)
        return _fill_outside(crop, crop_to_photo, photo.shape), crop_to_photo
    m = np.array([[scale, 0, x0], [0, scale, y0]], np.float64)
    crop = cv2.warpAffine(photo, m, (out, out), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_REPLICATE)
    return _fill_outside(crop, m, photo.shape), m


def beyond_photo(crop_to_photo: np.ndarray, size: int, shape: tuple[int, ...]) -> np.ndarray:
    """(size, size) how far (crop px) each pixel of a square crop lies past the photo's edge; 0 on it."""
    s, (x0, y0) = crop_to_photo[0, 0], crop_to_photo[:, 2]
    centres = np.arange(size) + 0.5

    def past(start: float, n: int) -> np.ndarray:
        at = start + s * centres
        return np.maximum(np.maximum(-at, at - n), 0.0) / s

    return np.hypot(past(y0, shape[0])[:, None], past(x0, shape[1])[None, :])


def _fill_outside(crop: np.ndarray, crop_to_photo: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """The crop's pixels beyond the photo's edge (replicated edge rows: streaks) blended into a
    blur of them over OUTSIDE_RAMP of the side: out of focus, the streaks read as the hair or the
    background going on. A mirror (cv2's reflecting border) instead shows what is just inside the
    edge upside down: over a head cut by the photo's top, a second hairline and a patch of forehead."""
    size = crop.shape[0]
    dist = beyond_photo(crop_to_photo, size, shape)
    if not dist.any():
        return crop
    blurred = cv2.GaussianBlur(crop, (0, 0), OUTSIDE_BLUR * size)
    wgt = np.clip(dist / (OUTSIDE_RAMP * size), 0.0, 1.0)[..., None]
    return (crop * (1.0 - wgt) + blurred * wgt).round().astype(crop.dtype)
