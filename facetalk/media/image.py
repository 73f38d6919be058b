"""Read a user's photo into an RGB array, and write arrays back out as images.

Photos arrive in every shape a phone or an editor can produce: rotated by an EXIF flag,
with alpha, paletted, grayscale, 16-bit, CMYK, with a colour profile, or named with the wrong
extension. Downstream stages want exactly one thing: an H×W×3 uint8 sRGB array, upright.
"""

from __future__ import annotations

import io
import os
import re
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from facetalk.errors import FacetalkError
from facetalk.media._files import (
    check_input_file,
    check_output_path,
    create_partial_file,
    one_line,
    remove_quietly,
    replace_output,
)

# A 40-megapixel photo (e.g. 7300×5500) decodes to 120 MB of RGB. Anything bigger is either a
# decompression bomb (a tiny file whose header claims enormous dimensions) or far more detail
# than a face crop can use, so it is refused from the header, before any pixel is decoded.
MAX_PIXELS = 40_000_000

# The photo formats facetalk reads, everywhere (the CLI, the Python API and the server's uploads):
# Pillow name -> (short name, the first bytes every such file starts with). Pillow is only ever
# allowed these decoders, so no exotic format (and no external helper such as Ghostscript for EPS)
# is reached by a user's file; the server sniffs an upload's first bytes against the same list.
PHOTO_FORMATS: dict[str, tuple[str, tuple[bytes, ...]]] = {
    "JPEG": ("jpeg", (b"\xff\xd8\xff",)),
    "PNG": ("png", (b"\x89PNG\r\n\x1a\n",)),
    "WEBP": ("webp", ()),  # RIFF....WEBP: checked in photo_format
    "GIF": ("gif", (b"GIF87a", b"GIF89a")),
    "BMP": ("bmp", (b"BM",)),
    "TIFF": ("tiff", (b"II*\x00", b"MM\x00*")),
}
PHOTO_FORMATS_TEXT = "JPEG, PNG or WebP (GIF, BMP and TIFF are read too)"

_HINT = f"pass a photo as {PHOTO_FORMATS_TEXT}"

_WRITE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP"}


def photo_format(head: bytes) -> str | None:
    """The short name ("jpeg", "png", "webp", "gif", "bmp", "tiff") of a photo in one of
    PHOTO_FORMATS, from its first 12 bytes; None for anything else."""
    if len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    for short, magics in PHOTO_FORMATS.values():
        if any(head.startswith(m) for m in magics):
            return short
    return None


def read_image(path: str | os.PathLike[str], max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Decode ``path`` into an upright H×W×3 uint8 sRGB array (C-contiguous).

    The format is found from the file's content, never its extension, because users rename
    files. Transparency is composited over white, since a face on a see-through background
    should look like a studio portrait, not a black cut-out.
    """
    p = check_input_file(path, "image", _HINT)
    try:
        with _open_lazily(p, max_pixels) as img:
            _check_size(p, img.size, max_pixels)
            try:
                img.load()  # force the full decode now, so truncation is caught here
                upright = _exif_upright(img)
                rgb = _to_rgb(upright)
                return np.array(rgb, dtype=np.uint8, order="C")  # own, writeable copy
            except FacetalkError:
                raise
            except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
                raise FacetalkError(
                    _too_big_message(p, None, _pixels_from_message(str(exc)), max_pixels)
                ) from None
            except MemoryError:
                raise FacetalkError(
                    f"cannot read image '{p}': not enough memory to decode it; "
                    f"{_HINT} of at most {max_pixels / 1e6:g} megapixels"
                ) from None
            except Exception as exc:  # any decoder failure on user data is a bad file, not a bug
                raise FacetalkError(
                    f"cannot read image '{p}': the file is truncated or corrupt ({one_line(exc)}); {_HINT}"
                ) from None
    except OSError as exc:  # closing or reading the file itself failed
        raise FacetalkError(f"cannot read image '{p}': {one_line(exc)}; {_HINT}") from None


def write_image(path: str | os.PathLike[str], rgb: np.ndarray) -> None:
    """Write an H×W×3 (or H×W gray) uint8 array as PNG, JPEG or WebP, chosen by extension.

    The file appears atomically, so a viewer polling the path never sees half an image.
    """
    arr = np.asarray(rgb)
    if arr.dtype != np.uint8 or arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] != 3):
        raise ValueError(f"write_image wants H×W×3 or H×W uint8, got shape {arr.shape} dtype {arr.dtype}")
    p = check_output_path(path)
    fmt = _WRITE_FORMATS.get(p.suffix.lower())
    if fmt is None:
        raise FacetalkError(
            f"cannot write image '{p}': unknown extension '{p.suffix}'; use .png, .jpg or .webp"
        )
    img = Image.fromarray(np.ascontiguousarray(arr))
    options = {"quality": 92} if fmt in ("JPEG", "WEBP") else {}
    tmp = create_partial_file(p, p.suffix)
    try:
        img.save(tmp, format=fmt, **options)
        replace_output(tmp, p)
    except OSError as exc:
        remove_quietly(tmp)
        raise FacetalkError(
            f"cannot write image '{p}': {one_line(exc.strerror or exc)}; choose another output path"
        ) from None
    except BaseException:
        remove_quietly(tmp)
        raise


def _open_lazily(p: Path, max_pixels: int) -> Image.Image:
    """Open the file and parse only its header; map every 'not an image' failure to one line."""
    try:
        with warnings.catch_warnings():
            # Pillow warns between its own limit and twice it; our smaller limit rejects those
            # images anyway, with a better message, so the warning would only be noise.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            return Image.open(p, formats=list(PHOTO_FORMATS))
    except Image.DecompressionBombError as exc:
        raise FacetalkError(_too_big_message(p, None, _pixels_from_message(str(exc)), max_pixels)) from None
    except Image.DecompressionBombWarning as exc:  # when warnings are turned into errors elsewhere
        raise FacetalkError(_too_big_message(p, None, _pixels_from_message(str(exc)), max_pixels)) from None
    except UnidentifiedImageError:
        raise FacetalkError(
            f"cannot read image '{p}': the file is not an image in a format we can read; {_HINT}"
        ) from None
    except Exception as exc:
        raise FacetalkError(
            f"cannot read image '{p}': the file is truncated or corrupt ({one_line(exc)}); {_HINT}"
        ) from None


def _check_size(p: Path, size: tuple[int, int], max_pixels: int) -> None:
    w, h = size
    if w <= 0 or h <= 0:
        raise FacetalkError(f"cannot read image '{p}': its header claims a size of {w}×{h}; {_HINT}")
    if w * h > max_pixels:
        raise FacetalkError(_too_big_message(p, (w, h), w * h, max_pixels))


def _too_big_message(p: Path, size: tuple[int, int] | None, pixels: int | None, max_pixels: int) -> str:
    limit = f"{max_pixels / 1e6:g}"
    if size is not None:
        what = f"{size[0]}×{size[1]} = {size[0] * size[1] / 1e6:.1f} megapixels"
    elif pixels is not None:
        what = f"{pixels / 1e6:.1f} megapixels"
    else:
        what = "too large"
    return (
        f"image '{p}' is {what}, over the limit of {limit}; "
        f"resize it below {limit} megapixels (a portrait needs no more than about 2000 px on the long side)"
    )


def _pixels_from_message(message: str) -> int | None:
    m = re.search(r"\((\d+) pixels\)", message)
    return int(m.group(1)) if m else None


def _exif_upright(img: Image.Image) -> Image.Image:
    """Apply the EXIF orientation; a broken EXIF block is ignored rather than fatal.

    Phones store portraits sideways and set a flag; ignoring the flag would feed the face
    detector a face lying on its side.
    """
    try:
        return ImageOps.exif_transpose(img)
    except Exception:
        return img


def _to_rgb(img: Image.Image) -> Image.Image:
    """Convert any Pillow mode to 8-bit sRGB, compositing transparency over white."""
    mode = img.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        return Image.fromarray(_gray_to_uint8(np.asarray(img)), mode="L").convert("RGB")
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        mode in ("P", "L", "RGB") and "transparency" in img.info
    ):
        rgba = img.convert("RGBA") if mode != "La" else img.convert("LA").convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(white, rgba).convert("RGB")
        return img
    if mode in ("RGB", "CMYK") and img.info.get("icc_profile"):
        managed = _icc_to_srgb(img)
        if managed is not None:
            return managed
    return img if mode == "RGB" else img.convert("RGB")


def _gray_to_uint8(a: np.ndarray) -> np.ndarray:
    """Scale 16-bit or float gray to 8 bits; Pillow's own conversion would clip it to white."""
    if a.dtype.kind == "f":
        a = np.nan_to_num(a.astype(np.float64))
        scale = 255.0 if float(a.max(initial=0.0)) <= 1.0 else 1.0
        return np.clip(np.rint(a * scale), 0, 255).astype(np.uint8)
    a = a.astype(np.int64)
    if int(a.max(initial=0)) <= 255:
        return np.clip(a, 0, 255).astype(np.uint8)
    return np.clip((a * 255 + 32767) // 65535, 0, 255).astype(np.uint8)


def _icc_to_srgb(img: Image.Image) -> Image.Image | None:
    """Convert from an embedded colour profile (e.g. an iPhone's Display P3) to sRGB.

    Returns None when the profile is already sRGB or cannot be used; the plain conversion is
    then close enough.
    """
    try:
        from PIL import ImageCms

        src = ImageCms.ImageCmsProfile(io.BytesIO(img.info["icc_profile"]))
        if "srgb" in ImageCms.getProfileDescription(src).lower().replace(" ", ""):
            return None
        dst = ImageCms.createProfile("sRGB")
        out = ImageCms.profileToProfile(img, src, dst, outputMode="RGB")
        return out if out is not None and out.mode == "RGB" else None
    except Exception:
        return None
