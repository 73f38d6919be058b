"""The outer ring: mesh vertices beyond the face (hair, ears, neck) out to the crop border.

The face mesh stops at the face oval. Vertices around it carry the hair and neck along with the
head, and fixed points on the crop border keep the frame's edge still. Together they tile the
whole crop, so every output pixel has a place in the photo to come from.

How these vertices move decides whether a turned head looks solid. The face lies in front of the
neck's pivot, so it moves sideways as the head turns (the forehead ~2.5 cm at 15 degrees); the
band between the face and whatever does not move with it stretches on one side and folds on the
other. Three rules keep that band where no one sees it:

- depth: each vertex keeps a share of its oval point's depth relief in front of the pivot
  (`relief`), falling off as a round head's surface does, so hair just above the forehead moves
  nearly as far as the forehead and the head's outline hardly at all;
- the silhouette: along each direction out of the face the person mask is searched for the
  head's outline; a vertex just beyond it moves with the head, so the outline (cheek, ear, hair
  edge) moves whole, and the stretch falls into the background, which the plate paints anyway;
- the border: `follow` fades smoothly to zero over the last stretch before the crop border (which
  must stay still for the paste-back), so what displacement is left spreads over a wide band.

Below the face (no outline: neck and clothes run to the border) the neck follows less, as a head
turns on it.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from scipy.spatial import Delaunay

from facetalk.face.landmarks import FACE_OVAL

RING_STEPS = (0.2, 0.45, 0.8)  # distances beyond the oval (x its radius there) where no outline is found
NECK_RELIEF = (0.8, 0.45, 0.25)  # below the face, at RING_STEPS: share of the chin's depth relief kept
NECK_FOLLOW = (0.9, 0.55, 0.3)  # ... and share of the head's motion followed
HEAD_DEPTH = 0.7  # the head's surface falls to the pivot's depth this far beyond the oval (x radius)
SEARCH = 0.9  # the head's outline is looked for this far beyond the oval (x radius)
OUTLINE_MARGIN = 0.05  # the vertex that carries the outline sits this far beyond it (x radius)
OUTLINE_ALPHA = 0.5  # person-mask level of the outline
OUTLINE_RELIEF = 0.4  # share of the oval's depth relief the outline keeps: it moves a little with
# the face (less background to uncover) and the hair or ear inside it stretches a little
BORDER_TAPER = 0.22  # follow fades to 0 over this share of the crop side before its border
BORDER_STEP = 64  # px between fixed points on the crop border


@dataclass(frozen=True)
class Ring:
    points: np.ndarray  # (R, 2) crop px of ring and border vertices
    follow: np.ndarray  # (R,) how much each follows the head (1 = rigidly, 0 = fixed)
    triangles: np.ndarray  # (K, 3) indices into [oval landmarks as 0..477] + [478 + ring index]
    anchor: np.ndarray  # (R,) the oval landmark each ring vertex lies beyond (-1: border)
    relief: np.ndarray  # (R,) share of the anchor's depth in front of the pivot the vertex keeps


def _border_distance(points: np.ndarray, size: int) -> np.ndarray:
    return np.min(np.concatenate([points, size - 1 - points], 1), axis=1)


def head_relief(t: np.ndarray) -> np.ndarray:
    """Share of the oval's depth relief kept at `t` oval radii beyond it (a round head)."""
    return np.clip(1.0 - (np.asarray(t) / HEAD_DEPTH) ** 2, 0.0, 1.0)


def outline_distance(alpha: np.ndarray, oval: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """Per oval point: how far beyond it (x its distance from the centre) the person mask first
    drops below OUTLINE_ALPHA along the ray from the face centre; inf if not within SEARCH."""
    size = alpha.shape[0]
    t = np.linspace(0.0, SEARCH, 46)
    rel = oval - centre
    pts = oval[:, None, :] + rel[:, None, :] * t[None, :, None]  # (N, T, 2)
    inside = ((pts >= 0) & (pts <= size - 1)).all(-1)
    xy = np.clip(np.round(pts).astype(int), 0, size - 1)
    a = alpha[xy[..., 1], xy[..., 0]]
    out = (a < OUTLINE_ALPHA) & inside
    first = np.where(out.any(1), t[np.argmax(out, axis=1)], np.inf)
    # a lone direction that slips through a gap (between hair strands, past an ear) is noise
    neighbours = np.stack([np.roll(first, 1), first, np.roll(first, -1)])
    return np.median(neighbours, axis=0)


def build_ring(landmarks2d: np.ndarray, size: int, alpha: np.ndarray | None = None) -> Ring:
    oval = landmarks2d[list(FACE_OVAL)].astype(np.float64)
    centre = oval.mean(0)
    rel = oval - centre
    directions = rel / np.linalg.norm(rel, axis=1, keepdims=True)
    below = np.clip(directions[:, 1], 0.0, 1.0) ** 1.5  # 1 straight below the face (image y down)
    outline = np.full(len(oval), np.inf) if alpha is None else outline_distance(alpha, oval, centre)
    pts, follow, relief, anchor = [], [], [], []

    def add(i: int, t: float, neck_relief: float, neck_follow: float, head: float | None = None) -> None:
        pts.append(oval[i] + rel[i] * t)
        head = float(head_relief(t)) if head is None else head
        relief.append((1 - below[i]) * head + below[i] * neck_relief)
        follow.append((1 - below[i]) + below[i] * neck_follow)
        anchor.append(FACE_OVAL[i])

    for i in range(len(oval)):
        if np.isfinite(outline[i]):  # the head's outline: move it whole, stretch beyond it
            edge = max(outline[i] + OUTLINE_MARGIN, RING_STEPS[0] * 0.5)
            if edge > 2 * RING_STEPS[0]:
                add(i, edge / 2, NECK_RELIEF[0], NECK_FOLLOW[0], 1 - (1 - OUTLINE_RELIEF) / 4)
            add(i, edge, NECK_RELIEF[0], NECK_FOLLOW[0], OUTLINE_RELIEF)
            add(i, edge + RING_STEPS[1], NECK_RELIEF[1], 0.5 * NECK_FOLLOW[1], 0.5 * OUTLINE_RELIEF)
        else:  # hair or neck to the border
            for k, t in enumerate(RING_STEPS):
                add(i, t, NECK_RELIEF[k], NECK_FOLLOW[k])
    ring_pts, ring_follow = np.array(pts), np.array(follow)
    ring_relief, ring_anchor = np.array(relief), np.array(anchor)
    margin = max(4.0, 0.02 * size)  # a vertex hugging the border would make slivers
    inside = ((ring_pts > margin) & (ring_pts < size - 1 - margin)).all(1)
    ring_pts, ring_follow = ring_pts[inside], ring_follow[inside]
    ring_relief, ring_anchor = ring_relief[inside], ring_anchor[inside]
    taper = np.clip(_border_distance(ring_pts, size) / (BORDER_TAPER * size), 0.0, 1.0)
    ring_follow = ring_follow * taper * taper * (3 - 2 * taper)
    n = int(np.ceil((size - 1) / BORDER_STEP))
    edge = np.linspace(0, size - 1, n + 1)
    border = np.unique(np.concatenate([
        np.stack([edge, np.zeros_like(edge)], 1), np.stack([edge, np.full_like(edge, size - 1)], 1),
        np.stack([np.zeros_like(edge), edge], 1), np.stack([np.full_like(edge, size - 1), edge], 1),
    ]), axis=0)
    points = np.concatenate([ring_pts, border])
    weights = np.concatenate([ring_follow, np.zeros(len(border))])
    all_pts = np.concatenate([oval, points])
    tri = Delaunay(all_pts).simplices
    poly = oval.astype(np.float32).reshape(-1, 1, 2)
    centroids = all_pts[tri].mean(1)
    outside = np.array([cv2.pointPolygonTest(poly, (float(x), float(y)), False) < 0 for x, y in centroids])
    tri = tri[outside]
    index = np.concatenate([np.asarray(FACE_OVAL), 478 + np.arange(len(points))])
    return Ring(points.astype(np.float32), weights.astype(np.float32), index[tri].astype(np.int32),
                np.concatenate([ring_anchor, np.full(len(border), -1)]).astype(np.int32),
                np.concatenate([ring_relief, np.zeros(len(border))]).astype(np.float32))
