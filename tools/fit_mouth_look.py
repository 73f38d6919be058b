"""Measure how the inside of a speaking mouth looks in real clips and in our renders of the same
clips, and fit the painted interior's constants (facetalk/render/mouth.py) to the real ones.

On every frame whose inner lips part (dlib's 68 points; inner lip = 60..67) it measures, relative to
the skin's luma (the band between the nose and the upper lip and the two cheeks):
  bright   the 90th percentile of the opening's luma (the teeth, when they show)
  cover    the share of the opening brighter than BRIGHT x skin (teeth coverage), also per third of
           the half-width from the middle (c/m/o: centre, middle, corners) and against gap/width
  dark     the mean RGB of the opening's darkest 30 % (the cavity: luma and chroma)
  floor    the 5th percentile (how black the darkest part, e.g. a rim, gets)
  teeth    the mean RGB of the bright pixels (the teeth's colour)
The fit paints our interior (draw_mouth, with trial constants) into each real frame between its own
inner-lip landmarks, measures it the same way, and moves the constants until the per-frame
statistics match the real ones (Nelder-Mead); a few clips are held out and reported separately.

    PYTHONPATH=$PWD python tools/fit_mouth_look.py [--shared ../shared] [--ours NAME=DIR ...] [--fit]

--ours NAME=DIR: renders of the real clips (DIR/<clip>.mp4, e.g. `facetalk generate` of each clip's
first frame with its own audio) to measure next to the real ones. Skips cleanly without ../shared.
"""

from __future__ import annotations

import argparse
import pickle
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
LUMA = np.array([0.299, 0.587, 0.114], np.float32)
BRIGHT = 0.6  # x skin luma: brighter pixels of the opening count as teeth
HOLD_OUT = ("v21", "v22", "v08")  # not fitted on: reported separately
PER_CLIP = 60  # open frames kept per clip (spread over the clip)
FIT_EVERY = 3
KEYS = ("bright", "cover", "c_cover", "m_cover", "o_cover", "c_rel", "m_rel", "o_rel", "floor",
        "dark_r", "dark_g", "dark_b", "teeth_r", "teeth_g", "teeth_b", "aspect")
WEIGHTS = dict(bright=2.0, cover=2.0, c_cover=1.0, m_cover=1.0, o_cover=1.0, c_rel=1.0, m_rel=1.0, o_rel=1.0,
               floor=2.0, dark_r=1.0, dark_g=1.0, dark_b=1.0, teeth_r=0.5, teeth_g=0.5, teeth_b=0.5)
UPPER, LOWER = [60, 61, 62, 63, 64], [60, 67, 66, 65, 64]


def read_frames(path: Path, every: int = 1):
    import av

    with av.open(str(path)) as c:
        for i, f in enumerate(c.decode(video=0)):
            if i % every == 0:
                yield i, f.to_ndarray(format="rgb24")


def skin_rgb(img: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Median colour of the band between the nose and the upper lip and of both cheeks."""
    w = np.linalg.norm(pts[64] - pts[60])
    r = max(int(0.08 * w), 1)
    centres = [pts[33] + 0.45 * (pts[51] - pts[33]), (pts[31] + pts[2]) / 2, (pts[35] + pts[14]) / 2]
    samples = []
    for c in centres:
        x, y = np.round(c).astype(int)
        patch = img[max(y - r, 0):y + r + 1, max(x - r, 0):x + r + 1].reshape(-1, 3)
        samples.append(np.median(patch, 0))
    return np.median(np.array(samples, np.float32), 0)


def opening(pts: np.ndarray) -> tuple[float, float]:
    w = float(np.linalg.norm(pts[64] - pts[60]))
    gap = float(np.mean(pts[[67, 66, 65], 1] - pts[[61, 62, 63], 1]))
    return gap, w


def measure(img: np.ndarray, pts: np.ndarray, skin: np.ndarray) -> np.ndarray | None:
    """KEYS for one frame, or None when the lips do not part (enough to see inside)."""
    gap, w = opening(pts)
    if gap < 2.5 or gap < 0.08 * w or w < 12:
        return None
    poly = pts[UPPER + LOWER[-2:0:-1]]
    x0, y0 = np.floor(poly.min(0)).astype(int)
    x1, y1 = np.ceil(poly.max(0)).astype(int) + 1
    mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
    cv2.fillPoly(mask, [np.round((poly - (x0, y0)) * 8).astype(np.int32)], 255, shift=3)
    sel = mask > 0
    if sel.sum() < 15:
        return None
    px = img[y0:y1, x0:x1][sel].astype(np.float32)
    ys = float(skin @ LUMA)
    rel = px @ LUMA / ys
    axis = (pts[64] - pts[60]) / w
    gy, gx = np.nonzero(sel)
    u = np.abs(((np.column_stack([gx + x0, gy + y0]) - (pts[60] + pts[64]) / 2) @ axis) / (w / 2))
    bright = rel > BRIGHT
    bins = [u < 0.33, (u >= 0.33) & (u < 0.66), u >= 0.66]
    part = lambda v, b: float(v[b].mean()) if b.any() else np.nan  # noqa: E731
    dark = px[rel <= np.percentile(rel, 30)].mean(0) / ys
    teeth = px[bright].mean(0) / ys if bright.sum() >= 3 else np.full(3, np.nan)
    return np.array([np.percentile(rel, 90), bright.mean(), *(part(bright, b) for b in bins),
                     *(part(rel, b) for b in bins), np.percentile(rel, 5), *dark, *teeth, gap / w], np.float32)


def clip_frames(path: Path, dlib_face, keep: bool) -> list[dict]:
    """Open-mouth frames of a clip: stats, and (keep) the mouth crop with its landmarks for painting."""
    n = sum(1 for _ in read_frames(path, 1)) if keep else 0
    every = max(1, n // (3 * PER_CLIP)) if keep else 1
    dlib_face.reset()
    out = []
    for i, img in read_frames(path, every):
        got = dlib_face.landmarks(img)
        if got is None:
            continue
        pts = got[0]
        skin = skin_rgb(img, pts)
        s = measure(img, pts, skin)
        if s is None:
            continue
        rec = dict(i=i, stats=s, skin=skin)
        if keep:
            _, w = opening(pts)
            m = int(0.3 * w) + 4
            lo = np.maximum(np.floor(pts[48:68].min(0)).astype(int) - m, 0)
            hi = np.ceil(pts[48:68].max(0)).astype(int) + m
            rec.update(crop=img[lo[1]:hi[1], lo[0]:hi[0]].copy(), pts=pts - lo)
        out.append(rec)
    if len(out) > PER_CLIP:
        out = [out[int(k)] for k in np.linspace(0, len(out) - 1, PER_CLIP)]
    return out


def photo_skin(path: Path) -> dict:
    """The renderer's own skin colour, grey flag and whites of the eyes (luma) for the clip's first
    frame (as the photo), and whether that photo's mouth is open (then our render reuses its teeth
    instead of painting)."""
    from facetalk.face.rig import build_rig
    from facetalk.render.renderer import Renderer

    _, img = next(read_frames(path))
    rig = build_rig(img, size=256)
    renderer = Renderer(rig)
    return dict(rig_skin=rig.skin_rgb, grey=rig.grayscale, photo_open=bool(renderer._photo_open), sclera=renderer.sclera)


# --- the painted interior, with trial constants ------------------------------------------------

PARAMS = ("TEETH_LUMA", "TEETH_TINT", "LIP_SHADOW", "TEETH_TURN", "ARCH_U", "INCISOR_SHOW",
          "CAVITY_R", "CAVITY_G", "CAVITY_B", "CAVITY_DEPTH", "LOWER_TEETH_SHARE")
BOUNDS = dict(TEETH_LUMA=(0.3, 1.6), TEETH_TINT=(0.0, 1.0), LIP_SHADOW=(0.0, 0.8), TEETH_TURN=(0.0, 0.9),
              ARCH_U=(0.25, 0.9), INCISOR_SHOW=(0.02, 0.15), CAVITY_R=(0.1, 0.9), CAVITY_G=(0.05, 0.7),
              CAVITY_B=(0.05, 0.7), CAVITY_DEPTH=(0.0, 0.9),
              LOWER_TEETH_SHARE=(0.0, 0.08))


def get_params() -> np.ndarray:
    from facetalk.render import mouth

    return np.array([mouth.TEETH_LUMA, mouth.TEETH_TINT, mouth.LIP_SHADOW, mouth.TEETH_TURN, mouth.ARCH_U,
                     mouth.INCISOR_SHOW, *mouth.CAVITY_REL, mouth.CAVITY_DEPTH, mouth.LOWER_TEETH_SHARE], np.float64)


def set_params(p: np.ndarray) -> None:
    from facetalk.render import mouth

    p = [float(np.clip(v, *BOUNDS[k])) for k, v in zip(PARAMS, p)]
    mouth.TEETH_LUMA, mouth.TEETH_TINT, mouth.LIP_SHADOW, mouth.TEETH_TURN, mouth.ARCH_U, mouth.INCISOR_SHOW = p[:6]
    mouth.CAVITY_REL = tuple(p[6:9])
    mouth.CAVITY_DEPTH, mouth.LOWER_TEETH_SHARE = p[9:11]


def paint_stats(frames: list[dict]) -> np.ndarray:
    from facetalk.render.mouth import draw_mouth, mouth_palette

    rows = []
    for f in frames:
        img, pts = f["crop"].copy(), f["pts"]
        up, lo = pts[UPPER], pts[LOWER]
        draw_mouth(img, up, lo, mouth_palette(f["rig_skin"], f["grey"], sclera=f["sclera"]), up, lo, f["crop"], False,
                   bite=up, jaw_line=lo)
        s = measure(img, pts, f["skin"])
        rows.append(s if s is not None else np.full(len(KEYS), np.nan, np.float32))
    return np.array(rows)


def loss(a: np.ndarray, b: np.ndarray) -> float:
    total = 0.0
    for k, wgt in WEIGHTS.items():
        j = KEYS.index(k)
        d = a[:, j] - b[:, j]
        d = d[np.isfinite(d)]
        total += wgt * float(np.mean(d**2)) if len(d) else 0.0
    return total


# --- report ------------------------------------------------------------------------------------

SHOW = ("bright", "cover", "c_cover", "o_cover", "floor", "dark_r", "dark_g", "dark_b", "teeth_r", "teeth_g", "teeth_b")


def summary(stats: np.ndarray) -> str:
    med = np.nanmedian(stats, 0)
    return " ".join(f"{med[KEYS.index(k)]:6.2f}" for k in SHOW)


def cover_vs_aspect(stats: np.ndarray, edges=(0.08, 0.15, 0.25, 9.0)) -> str:
    a, c = stats[:, KEYS.index("aspect")], stats[:, KEYS.index("cover")]
    cells = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        b = (a >= lo) & (a < hi)
        cells.append(f"{np.mean(c[b]):.2f}({b.sum()})" if b.any() else "  -  ")
    return " ".join(cells)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    ap.add_argument("--ours", action="append", default=[], help="NAME=DIR of renders <clip>.mp4")
    ap.add_argument("--fit", action="store_true", help="fit the constants (else measure only)")
    ap.add_argument("--clips", default="", help="comma-separated clip prefixes (default: all)")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/fit_mouth_look"))
    ap.add_argument("--iters", type=int, default=250)
    a = ap.parse_args()
    real_dir = a.shared / "eval" / "video_real"
    if not real_dir.is_dir():
        print(f"skipped: no real clips at {real_dir}")
        return 0
    from facetalk.eval.dlib_face import DlibFace

    dlib_face = DlibFace.load()
    clips = sorted(p for p in real_dir.iterdir() if p.suffix in (".mpg", ".mp4", ".avi"))
    if a.clips:
        clips = [p for p in clips if p.name.split("_")[0] in a.clips.split(",")]
    a.cache.mkdir(parents=True, exist_ok=True)
    real: dict[str, list[dict]] = {}
    t0 = time.perf_counter()
    for p in clips:
        f = a.cache / f"{p.stem}.real.pkl"
        frames = pickle.loads(f.read_bytes()) if f.exists() else clip_frames(p, dlib_face, keep=True)
        if frames and "sclera" not in frames[0]:  # new, or cached before the eyes were measured
            photo = photo_skin(p)
            for r in frames:
                r.update(photo)
            f.write_bytes(pickle.dumps(frames))
        real[p.stem] = frames
    print(f"real clips measured in {time.perf_counter() - t0:.0f}s")
    eyes = [fr[0]["sclera"] / float(fr[0]["rig_skin"] @ LUMA) for fr in real.values() if fr and fr[0]["sclera"]]
    if eyes:
        print(f"whites of the eyes, x the skin's luma, on the clips' first frames: median {np.median(eyes):.2f} "
              f"(SCLERA_REF), {min(eyes):.2f}-{max(eyes):.2f}")
    ours: dict[str, dict[str, np.ndarray]] = {}
    for spec in a.ours:
        name, d = spec.split("=", 1)
        ours[name] = {}
        for p in clips:
            v = Path(d) / f"{p.stem}.mp4"
            if v.exists():
                st = [r["stats"] for r in clip_frames(v, dlib_face, keep=False)]
                ours[name][p.stem] = np.array(st) if st else np.empty((0, len(KEYS)))

    print(f"median per clip, x skin luma (dark/teeth: RGB / skin luma); BRIGHT = {BRIGHT}\n"
          f"{'clip':32s} {'who':8s} {'n':>3s} " + " ".join(f"{k:>6s}" for k in SHOW)
          + "   cover by gap/width <.15 .15-.25 >.25")
    for name, frames in real.items():
        tag = " (held out)" if name.split("_")[0] in HOLD_OUT else ""
        tag += " [photo open: ours reuses its teeth]" if frames and frames[0]["photo_open"] else ""
        st = np.array([r["stats"] for r in frames]) if frames else np.empty((0, len(KEYS)))
        print(f"{name[:32]:32s} {'real':8s} {len(st):3d} {summary(st)}   {cover_vs_aspect(st)}{tag}")
        if frames:
            print(f"{'':32s} {'painted':8s} {len(st):3d} {summary(paint_stats(frames))}")
        for who, per in ours.items():
            if name in per and len(per[name]):
                print(f"{'':32s} {who[:8]:8s} {len(per[name]):3d} {summary(per[name])}   "
                      f"{cover_vs_aspect(per[name])}")
    held = [f for n, fr in real.items() if n.split("_")[0] in HOLD_OUT for f in fr]
    train = [f for n, fr in real.items() if n.split("_")[0] not in HOLD_OUT for f in fr]
    for label, group in (("all fitted clips", train), ("held out", held)):
        if group:
            r = np.array([f["stats"] for f in group])
            print(f"{label:32s} real     {len(r):3d} {summary(r)}   {cover_vs_aspect(r)}")
            print(f"{'':32s} painted  {len(r):3d} {summary(paint_stats(group))}   "
                  f"loss {loss(paint_stats(group), r):.4f}")
    if not a.fit or not train:
        return 0
    from scipy.optimize import minimize

    sub = train[::FIT_EVERY]  # every FIT_EVERY-th frame keeps a fit to a couple of minutes
    target = np.array([f["stats"] for f in sub])
    p0 = get_params()
    scale = np.array([BOUNDS[k][1] - BOUNDS[k][0] for k in PARAMS])
    seen = []

    def cost(z: np.ndarray) -> float:
        set_params(p0 + z * scale)
        v = loss(paint_stats(sub), target)
        seen.append(v)
        if len(seen) % 50 == 0:
            print(f"  {len(seen)} evaluations, best loss {min(seen):.4f}", flush=True)
        return v

    t0 = time.perf_counter()
    res = minimize(cost, np.zeros(len(p0)), method="Nelder-Mead",
                   options=dict(maxfev=a.iters, xatol=1e-3, fatol=1e-5))
    z, fz = res.x.copy(), res.fun
    for sweep in range(2):  # Nelder-Mead stalls in 11-d: polish one constant at a time
        for j in range(len(z)):
            for step in (-0.12, -0.06, -0.03, 0.03, 0.06, 0.12):
                t = z.copy()
                t[j] += step / (sweep + 1)
                ft = cost(t)
                if ft < fz:
                    z, fz = t, ft
    print(f"  polished: loss {fz:.4f}")
    best = np.array([np.clip(v, *BOUNDS[k]) for k, v in zip(PARAMS, p0 + z * scale)])
    set_params(best)
    print(f"fit on {len(sub)} frames: loss {seen[0]:.4f} -> {res.fun:.4f} after {res.nfev} evaluations, "
          f"{time.perf_counter() - t0:.0f}s")
    for k, v in zip(PARAMS, best):
        print(f"  {k} = {v:.3f}")
    for label, group in (("fitted clips", train), ("held out", held)):
        if group:
            r = np.array([f["stats"] for f in group])
            ps = paint_stats(group)
            print(f"{label:32s} real     {len(r):3d} {summary(r)}   {cover_vs_aspect(r)}")
            print(f"{'':32s} painted  {len(r):3d} {summary(ps)}   {cover_vs_aspect(ps)}  loss {loss(ps, r):.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
