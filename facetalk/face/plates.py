"""What the photo never shows, prepared once per photo: the background behind the person and
the eyeballs without their irises.

The person's colours are un-mixed from the background (photo = a*F + (1-a)*B), so that the moved
person composited over the plate reproduces the photo exactly when nothing moves.
"""

from __future__ import annotations

import cv2
import numpy as np

from facetalk.face.detect import _mp, _quiet_native_logs
from facetalk.face.landmarks import EYE_L, EYE_R, FACE_OVAL, IRIS_L_CENTER, IRIS_L_RING, IRIS_R_CENTER, IRIS_R_RING

PLATE_WORK_SIDE = 160  # px: the background is inpainted at this size; it only shows at edges
MIRROR_REACH = 0.08  # share of the crop side over which the mirrored background fades into the smooth fill


def person_alpha(crop: np.ndarray, landmarks2d: np.ndarray) -> np.ndarray:
    """Soft person mask (float32 0..1): selfie segmentation, always including the face."""
    mp = _mp()
    with _quiet_native_logs(), mp.solutions.selfie_segmentation.SelfieSegmentation(model_selection=0) as seg:
        prob = seg.process(np.ascontiguousarray(crop)).segmentation_mask
    # a crisp edge (the segmentation is soft over ~5 px): a turned head magnifies its near side,
    # and a soft edge magnified reads as a translucent smear; the photo itself is unmixed exactly
    alpha = np.clip((prob.astype(np.float32) - 0.4) / 0.2, 0.0, 1.0)
    face = np.zeros(alpha.shape, np.uint8)
    hull = cv2.convexHull(landmarks2d[list(FACE_OVAL)].astype(np.int32))
    cv2.fillConvexPoly(face, hull, 255)
    # The face is always the person, but only inside its oval: MediaPipe's oval often runs a few
    # px past the real cheek or jaw, and background forced opaque there would turn with the face
    # (a bluish band along the near cheek of a turned head). The segmentation draws that edge.
    k = max(3, crop.shape[0] // 40) | 1
    face = cv2.GaussianBlur(cv2.erode(face, np.ones((k, k), np.uint8)), (k, k), 0)
    return np.maximum(alpha, face.astype(np.float32) / 255.0)


def background_plate(crop: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """The background with the person removed (inpainted at low resolution, then upsampled)."""
    size = crop.shape[0]
    k = max(3, size // 48) | 1  # the mask's edge is uncertain by a few px: remove a margin too
    hole = cv2.dilate((alpha > 0.02).astype(np.uint8) * 255, np.ones((k, k), np.uint8))
    small = cv2.resize(crop, (PLATE_WORK_SIDE, PLATE_WORK_SIDE), interpolation=cv2.INTER_AREA)
    small_hole = (cv2.resize(hole, (PLATE_WORK_SIDE, PLATE_WORK_SIDE), interpolation=cv2.INTER_AREA) > 0)
    filled = cv2.inpaint(small, small_hole.astype(np.uint8) * 255, 5, cv2.INPAINT_TELEA)
    filled = cv2.GaussianBlur(filled, (5, 5), 0)
    big = cv2.resize(filled, (size, size), interpolation=cv2.INTER_CUBIC)
    big = _mirror_edge(crop, hole > 0, big)
    return np.where((hole > 0)[..., None], big, crop)


def _mirror_edge(crop: np.ndarray, hole: np.ndarray, smooth: np.ndarray) -> np.ndarray:
    """The hole's rim filled with the background mirrored across the hole's edge, fading into the
    smooth fill further in. A turning head uncovers only a band next to its outline; a smooth,
    blurred fill there reads as a smeared stripe against a textured background (a painting's
    craquelure, foliage), where the mirrored texture carries on as the background does."""
    if not hole.any() or hole.all():
        return smooth
    size = crop.shape[0]
    dist, labels = cv2.distanceTransformWithLabels(hole.astype(np.uint8), cv2.DIST_L2, 5,
                                                   labelType=cv2.DIST_LABEL_PIXEL)
    reach = MIRROR_REACH * size
    ys, xs = np.nonzero(hole & (dist < reach))
    known = np.argwhere(~hole)  # row-major, as the labels count them
    nearest = known[labels[ys, xs] - 1]  # y, x of the nearest known pixel
    my, mx = 2 * nearest[:, 0] - ys, 2 * nearest[:, 1] - xs
    ok = (my >= 0) & (my < size) & (mx >= 0) & (mx < size)
    my, mx = np.clip(my, 0, size - 1), np.clip(mx, 0, size - 1)
    ok &= ~hole[my, mx]
    w = np.zeros((size, size), np.float32)
    w[ys, xs] = ok * (1.0 - dist[ys, xs] / reach)
    w = cv2.GaussianBlur(w, (0, 0), 2.0)[ys, xs, None]  # no seams where the mirror gives out
    out = smooth.copy()
    out[ys, xs] = np.clip(smooth[ys, xs] * (1 - w) + crop[my, mx] * w, 0, 255).astype(np.uint8)
    return out


def unmix_foreground(crop: np.ndarray, alpha: np.ndarray, plate: np.ndarray) -> np.ndarray:
    """F from photo = a*F + (1-a)*B, where alpha is soft; the photo itself where a is ~1 or ~0."""
    a = alpha[..., None]
    fg = (crop.astype(np.float32) - (1 - a) * plate.astype(np.float32)) / np.maximum(a, 1e-3)
    fg = np.where(a > 0.05, fg, crop.astype(np.float32))
    return np.clip(fg, 0, 255).astype(np.uint8)


def iris_geometry(landmarks2d: np.ndarray) -> list[tuple[np.ndarray, float]]:
    """(centre, radius) in crop px for the right and left iris."""
    out = []
    for c, ring in ((IRIS_R_CENTER, IRIS_R_RING), (IRIS_L_CENTER, IRIS_L_RING)):
        centre = landmarks2d[c].astype(np.float64)
        radius = float(np.linalg.norm(landmarks2d[list(ring)] - centre, axis=1).mean())
        out.append((centre, radius))
    return out


def eye_plate_and_iris(image: np.ndarray, landmarks2d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The image with each iris inpainted away (sclera only), and the iris alpha (float32 0..1).

    The iris alpha is the visible part of each iris disc in the photo: moving it with the gaze
    and clipping it by the lids draws an eyeball that looks where it is told.
    """
    plate = image.copy()
    iris_alpha = np.zeros(image.shape[:2], np.float32)
    for (centre, radius), eye in zip(iris_geometry(landmarks2d), (EYE_R, EYE_L)):
        poly = landmarks2d[list(eye)].astype(np.float64)
        x0, y0 = np.floor(poly.min(0) - radius - 4).astype(int)
        x1, y1 = np.ceil(poly.max(0) + radius + 4).astype(int)
        x0, y0 = max(x0, 0), max(y0, 0)
        x1, y1 = min(x1, image.shape[1]), min(y1, image.shape[0])
        if x1 - x0 < 4 or y1 - y0 < 4:
            continue
        opening = np.zeros((y1 - y0, x1 - x0), np.uint8)
        cv2.fillPoly(opening, [np.round((poly - (x0, y0)) * 4).astype(np.int32)], 255, cv2.LINE_AA, shift=2)
        yy, xx = np.mgrid[y0:y1, x0:x1]
        dist = np.hypot(xx - centre[0], yy - centre[1])
        disc = np.clip((radius * 1.12 - dist) / 1.5 + 0.5, 0, 1).astype(np.float32)
        alpha = disc * (opening.astype(np.float32) / 255.0)
        iris_alpha[y0:y1, x0:x1] = np.maximum(iris_alpha[y0:y1, x0:x1], alpha)
        hole = ((disc > 0.01) & (opening > 0)).astype(np.uint8) * 255
        hole = cv2.dilate(hole, np.ones((3, 3), np.uint8))
        roi = np.ascontiguousarray(plate[y0:y1, x0:x1])
        # Sclera around the iris is the colour to extend; the lids must not bleed in.
        plate[y0:y1, x0:x1] = cv2.inpaint(roi, hole, 3, cv2.INPAINT_TELEA)
    return plate, iris_alpha
