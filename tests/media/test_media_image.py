"""read_image / write_image: every photo a user might have, and every way it can be wrong."""

from __future__ import annotations

import io
import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageCms

from facetalk.errors import FacetalkError
from facetalk.media.image import MAX_PIXELS, read_image, write_image


def _photo(h: int = 48, w: int = 64) -> np.ndarray:
    """A smooth RGB test card (lossy codecs keep it close) with a distinct top-left corner."""
    y, x = np.mgrid[0:h, 0:w]
    rgb = np.stack([x * 255 // max(w - 1, 1), y * 255 // max(h - 1, 1), np.full_like(x, 128)], axis=-1)
    rgb = rgb.astype(np.uint8)
    rgb[: h // 4, : w // 4] = (255, 0, 0)
    return rgb


def _assert_rgb(a: np.ndarray, shape: tuple[int, int]) -> None:
    assert a.dtype == np.uint8
    assert a.shape == (*shape, 3)
    assert a.flags.c_contiguous


def _assert_one_line(err: pytest.ExceptionInfo[FacetalkError], *fragments: str) -> None:
    msg = str(err.value)
    assert "\n" not in msg
    for fragment in fragments:
        assert fragment in msg, msg


def _png_with_size(path: Path, width: int, height: int) -> Path:
    """A tiny valid PNG whose IHDR is patched to claim ``width``×``height`` (a decompression bomb)."""
    buf = io.BytesIO()
    Image.new("1", (8, 8)).save(buf, format="PNG")
    data = bytearray(buf.getvalue())
    # signature (8) + length (4) + b"IHDR" (4), then width and height, then the chunk's CRC
    data[16:24] = struct.pack(">II", width, height)
    ihdr = bytes(data[12:29])
    data[29:33] = struct.pack(">I", zlib.crc32(ihdr) & 0xFFFFFFFF)
    path.write_bytes(bytes(data))
    return path


# --- formats ---------------------------------------------------------------------------------


def test_png_roundtrip_is_exact(tmp_path: Path) -> None:
    rgb = _photo()
    Image.fromarray(rgb).save(tmp_path / "a.png")
    out = read_image(tmp_path / "a.png")
    _assert_rgb(out, (48, 64))
    assert np.array_equal(out, rgb)
    out[0, 0] = 0  # an own, writeable copy


@pytest.mark.parametrize("ext, fmt", [(".jpg", "JPEG"), (".webp", "WEBP")])
def test_lossy_formats(tmp_path: Path, ext: str, fmt: str) -> None:
    rgb = _photo()
    Image.fromarray(rgb).save(tmp_path / f"a{ext}", format=fmt, quality=95)
    out = read_image(tmp_path / f"a{ext}")
    _assert_rgb(out, (48, 64))
    assert np.abs(out.astype(int) - rgb).mean() < 6


def test_content_not_extension_decides(tmp_path: Path) -> None:
    rgb = _photo()
    Image.fromarray(rgb).save(tmp_path / "really_a_png.jpg", format="PNG")
    assert np.array_equal(read_image(tmp_path / "really_a_png.jpg"), rgb)


def test_rgba_is_composited_over_white(tmp_path: Path) -> None:
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., :3] = (10, 20, 30)
    rgba[0, :, 3] = 0  # transparent row
    rgba[1, :, 3] = 255  # opaque row
    rgba[2, :, 3] = 128  # half
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    out = read_image(tmp_path / "a.png")
    _assert_rgb(out, (4, 4))
    assert (out[0] == 255).all()
    assert (out[1] == (10, 20, 30)).all()
    assert np.allclose(out[2, 0], [132, 137, 142], atol=2)


def test_grayscale_and_bilevel(tmp_path: Path) -> None:
    gray = np.tile(np.arange(0, 256, 16, dtype=np.uint8), (4, 1))
    Image.fromarray(gray, "L").save(tmp_path / "g.png")
    out = read_image(tmp_path / "g.png")
    _assert_rgb(out, (4, 16))
    assert np.array_equal(out[..., 0], gray) and np.array_equal(out[..., 1], gray)
    Image.fromarray(gray > 100).save(tmp_path / "b.png")
    out = read_image(tmp_path / "b.png")
    assert set(np.unique(out)) == {0, 255}


def test_la_and_palette_with_transparency(tmp_path: Path) -> None:
    la = np.zeros((2, 2, 2), np.uint8)
    la[..., 0] = 50
    la[0, :, 1] = 255
    Image.fromarray(la, "LA").save(tmp_path / "la.png")
    out = read_image(tmp_path / "la.png")
    assert (out[0] == 50).all() and (out[1] == 255).all()

    pal = Image.new("P", (2, 2))
    pal.putpalette([0, 0, 255, 255, 0, 0] + [0] * 762)
    pal.putpixel((0, 0), 1)
    pal.info["transparency"] = 0
    pal.save(tmp_path / "p.png", transparency=0)
    out = read_image(tmp_path / "p.png")
    assert tuple(out[0, 0]) == (255, 0, 0)
    assert tuple(out[1, 1]) == (255, 255, 255)  # index 0 is transparent -> white


def test_palette_gif(tmp_path: Path) -> None:
    Image.fromarray(_photo()).convert("P").save(tmp_path / "a.gif")
    _assert_rgb(read_image(tmp_path / "a.gif"), (48, 64))


def test_16bit_gray_is_scaled_not_clipped(tmp_path: Path) -> None:
    ramp = np.tile(np.linspace(0, 65535, 16).astype(np.uint16), (2, 1))
    Image.fromarray(ramp).save(tmp_path / "g16.png")
    out = read_image(tmp_path / "g16.png")
    _assert_rgb(out, (2, 16))
    assert out[0, 0, 0] == 0 and out[0, -1, 0] == 255
    assert 120 <= out[0, 8, 0] <= 140  # mid-grey stays mid-grey


def test_cmyk_jpeg(tmp_path: Path) -> None:
    Image.new("CMYK", (8, 8), (0, 255, 255, 0)).save(tmp_path / "c.jpg")
    out = read_image(tmp_path / "c.jpg")
    _assert_rgb(out, (8, 8))
    assert out[..., 0].mean() > 200 and out[..., 1].mean() < 50  # red


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    rgb = _photo(40, 60)  # red block at the stored top-left
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90° clockwise to display
    Image.fromarray(rgb).save(tmp_path / "r.jpg", exif=exif.tobytes(), quality=95)
    out = read_image(tmp_path / "r.jpg")
    _assert_rgb(out, (60, 40))
    assert np.array_equal(out, np.ascontiguousarray(out))
    top_right = out[:10, -10:].astype(int)
    top_left = out[:10, :10].astype(int)
    assert top_right[..., 0].mean() > 200 and top_right[..., 1].mean() < 60
    assert top_left[..., 0].mean() < 100


def test_icc_profiles_do_not_break_reading(tmp_path: Path) -> None:
    rgb = _photo()
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    Image.fromarray(rgb).save(tmp_path / "s.png", icc_profile=srgb)
    assert np.abs(read_image(tmp_path / "s.png").astype(int) - rgb).max() <= 1
    Image.fromarray(rgb).save(tmp_path / "junk.png", icc_profile=b"not a profile")
    assert np.array_equal(read_image(tmp_path / "junk.png"), rgb)


def test_tiny_and_large_images(tmp_path: Path) -> None:
    Image.fromarray(_photo(200, 150)).save(tmp_path / "tiny.png")
    _assert_rgb(read_image(tmp_path / "tiny.png"), (200, 150))
    big = np.zeros((3000, 4000, 3), np.uint8)
    big[::7] = 200
    Image.fromarray(big).save(tmp_path / "big.png", compress_level=1)
    _assert_rgb(read_image(tmp_path / "big.png"), (3000, 4000))


# --- errors ----------------------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FacetalkError) as err:
        read_image(tmp_path / "nope.jpg")
    _assert_one_line(err, "nope.jpg", "does not exist")


def test_directory(tmp_path: Path) -> None:
    with pytest.raises(FacetalkError) as err:
        read_image(tmp_path)
    _assert_one_line(err, "folder")


def test_empty_file(tmp_path: Path) -> None:
    (tmp_path / "e.png").write_bytes(b"")
    with pytest.raises(FacetalkError) as err:
        read_image(tmp_path / "e.png")
    _assert_one_line(err, "e.png", "empty")


@pytest.mark.parametrize("content", [b"hello, I am a text file\n" * 10, bytes(range(256)) * 4])
def test_not_an_image(tmp_path: Path, content: bytes) -> None:
    (tmp_path / "x.jpg").write_bytes(content)
    with pytest.raises(FacetalkError) as err:
        read_image(tmp_path / "x.jpg")
    _assert_one_line(err, "x.jpg", "JPEG, PNG or WebP")


@pytest.mark.parametrize("fmt, ext", [("JPEG", "jpg"), ("PNG", "png"), ("WEBP", "webp")])
def test_truncated_file(tmp_path: Path, fmt: str, ext: str) -> None:
    noise = np.random.default_rng(0).integers(0, 256, (96, 96, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(noise).save(buf, format=fmt)
    (tmp_path / f"t.{ext}").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    with pytest.raises(FacetalkError) as err:
        read_image(tmp_path / f"t.{ext}")
    _assert_one_line(err, f"t.{ext}")


def test_over_our_limit_is_refused_from_the_header(tmp_path: Path) -> None:
    path = _png_with_size(tmp_path / "bomb.png", 8000, 6000)  # 48 MP, a few hundred bytes
    with pytest.raises(FacetalkError) as err:
        read_image(path)
    _assert_one_line(err, "bomb.png", "8000×6000", "48.0 megapixels", "limit of 40", "resize")
    assert MAX_PIXELS == 40_000_000


def test_custom_limit(tmp_path: Path) -> None:
    Image.fromarray(_photo()).save(tmp_path / "a.png")
    with pytest.raises(FacetalkError):
        read_image(tmp_path / "a.png", max_pixels=1000)


@pytest.mark.parametrize("side", [10_000, 30_000])  # Pillow's warning range, then its error range
def test_pillow_bomb_checks_never_escape(tmp_path: Path, side: int) -> None:
    path = _png_with_size(tmp_path / "bomb.png", side, side)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a leaked DecompressionBombWarning would fail here
        with pytest.raises(FacetalkError) as err:
            read_image(path)
    _assert_one_line(err, "bomb.png", "megapixels", "limit of 40")


# --- write_image -----------------------------------------------------------------------------


def test_write_png_and_jpeg(tmp_path: Path) -> None:
    rgb = _photo()
    write_image(tmp_path / "o.png", rgb)
    assert np.array_equal(read_image(tmp_path / "o.png"), rgb)
    write_image(tmp_path / "o.jpg", rgb)
    assert np.abs(read_image(tmp_path / "o.jpg").astype(int) - rgb).mean() < 6
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.jpg", "o.png"]  # no temporary files left


def test_write_errors(tmp_path: Path) -> None:
    with pytest.raises(FacetalkError) as err:
        write_image(tmp_path / "missing" / "o.png", _photo())
    _assert_one_line(err, "does not exist")
    with pytest.raises(FacetalkError) as err:
        write_image(tmp_path / "o.bmpx", _photo())
    _assert_one_line(err, ".png")
    with pytest.raises(ValueError):
        write_image(tmp_path / "o.png", _photo().astype(np.float32))
