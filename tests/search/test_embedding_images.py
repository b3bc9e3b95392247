"""load_image: every photo a shopper or a catalog may send becomes an upright RGB image, or a clear error."""

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image, ImageFile

from search.embedding import ImageDecodeError, ImageTooLarge, load_image, to_rgb

LIMIT = 40_000_000


def encode(image: Image.Image, fmt: str, **save) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format=fmt, **save)
    return buf.getvalue()


def pixel(image: Image.Image, xy=(0, 0)) -> tuple[int, int, int]:
    return image.getpixel(xy)


def test_real_photos_load_as_rgb(photo_path):
    for name in ["hammer1.webp", "box.png", "apple.jpg"]:
        image = load_image(photo_path(name), max_pixels=LIMIT)
        assert image.mode == "RGB"
        assert image.size == Image.open(photo_path(name)).size


def test_accepts_bytes_path_string_and_file_object(photo_path, photo_bytes):
    data = photo_bytes("apple.jpg")
    from_bytes = load_image(data, max_pixels=LIMIT)
    from_str = load_image(str(photo_path("apple.jpg")), max_pixels=LIMIT)
    stream = io.BytesIO(data)
    from_file = load_image(stream, max_pixels=LIMIT)
    assert np.array_equal(np.asarray(from_bytes), np.asarray(from_str))
    assert np.array_equal(np.asarray(from_bytes), np.asarray(from_file))
    assert stream.tell() == 0, "the caller's file is rewound so it can still be saved"


def test_format_is_decided_by_content_not_name(tmp_path, photo_bytes):
    misnamed = tmp_path / "really_a_jpeg.png"
    misnamed.write_bytes(photo_bytes("apple.jpg"))
    assert load_image(misnamed, max_pixels=LIMIT).format == "JPEG"


def test_formats_allow_list_refuses_other_formats(photo_bytes):
    with pytest.raises(ImageDecodeError, match="PNG format are not accepted"):
        load_image(photo_bytes("box.png"), max_pixels=LIMIT, formats={"JPEG", "WEBP"})
    assert load_image(photo_bytes("apple.jpg"), max_pixels=LIMIT, formats={"JPEG"}).format == "JPEG"


def test_exif_orientation_is_applied(photo_path):
    upright = Image.open(photo_path("hammer1.webp")).convert("RGB")
    stored = upright.transpose(Image.Transpose.ROTATE_90)  # how a phone stores a portrait shot
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90° clockwise to display
    loaded = load_image(encode(stored, "PNG", exif=exif), max_pixels=LIMIT)
    assert loaded.size == upright.size
    assert np.array_equal(np.asarray(loaded), np.asarray(upright))


def test_palette_with_transparency_is_composited_on_white():
    image = Image.new("P", (4, 4), 1)
    image.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    image.putpixel((0, 0), 0)
    loaded = load_image(encode(image, "PNG", transparency=0), max_pixels=LIMIT)
    assert pixel(loaded, (0, 0)) == (255, 255, 255)  # transparent black shows as white
    assert pixel(loaded, (1, 1)) == (255, 0, 0)


def test_palette_gif_without_transparency():
    image = Image.new("RGB", (4, 4), (0, 0, 255)).convert("P")
    assert pixel(load_image(encode(image, "GIF"), max_pixels=LIMIT)) == (0, 0, 255)


@pytest.mark.parametrize(
    ("mode", "colour", "expected"),
    [
        ("RGBA", (255, 0, 0, 0), (255, 255, 255)),
        ("RGBA", (255, 0, 0, 255), (255, 0, 0)),
        ("RGBA", (0, 0, 0, 128), (127, 127, 127)),
        ("LA", (100, 255), (100, 100, 100)),
        ("LA", (0, 0), (255, 255, 255)),
    ],
)
def test_alpha_is_composited_on_white(mode, colour, expected):
    loaded = load_image(encode(Image.new(mode, (4, 4), colour), "PNG"), max_pixels=LIMIT)
    assert pixel(loaded) == pytest.approx(expected, abs=1)


def test_pa_mode_is_composited_on_white():
    image = Image.new("PA", (2, 2), (0, 0))
    image.putpalette([0, 200, 0] + [0] * 765)
    assert pixel(to_rgb(image)) == (255, 255, 255)
    image.putpixel((1, 1), (0, 255))
    assert pixel(to_rgb(image), (1, 1)) == (0, 200, 0)


def test_premultiplied_alpha_modes_are_composited_on_white():
    assert pixel(to_rgb(Image.new("La", (2, 2), (0, 0)))) == (255, 255, 255)
    assert pixel(to_rgb(Image.new("RGBa", (2, 2), (0, 0, 0, 0)))) == (255, 255, 255)
    assert pixel(to_rgb(Image.new("La", (2, 2), (100, 255)))) == (100, 100, 100)


@pytest.mark.parametrize(
    ("lab", "expected"), [((0, 128, 128), (0, 0, 0)), ((255, 128, 128), (255, 255, 255))]
)
def test_lab_tiff_is_colour_converted_not_reinterpreted(lab, expected):
    loaded = load_image(encode(Image.new("LAB", (4, 4), lab), "TIFF"), max_pixels=LIMIT)
    assert pixel(loaded) == pytest.approx(expected, abs=2)


def test_cmyk_jpeg_becomes_rgb():
    loaded = load_image(
        encode(Image.new("CMYK", (16, 16), (0, 255, 255, 0)), "JPEG", quality=95), max_pixels=LIMIT
    )
    red, green, blue = pixel(loaded, (8, 8))
    assert red > 230 and green < 30 and blue < 30


@pytest.mark.parametrize(("value", "expected"), [(65535, 255), (32896, 128), (0, 0), (257, 1)])
def test_16_bit_greyscale_png_is_scaled_not_clipped(value, expected):
    loaded = load_image(encode(Image.new("I;16", (4, 4), value), "PNG"), max_pixels=LIMIT)
    assert pixel(loaded) == (expected,) * 3


def test_32_bit_integer_tiff_is_scaled_as_16_bit():
    loaded = load_image(encode(Image.new("I", (4, 4), 32896), "TIFF"), max_pixels=LIMIT)
    assert pixel(loaded) == (128, 128, 128)


def test_float_tiff_in_unit_range_is_scaled():
    loaded = load_image(encode(Image.new("F", (4, 4), 0.5), "TIFF"), max_pixels=LIMIT)
    assert pixel(loaded) == (128, 128, 128)


def test_one_bit_image_becomes_black_and_white():
    image = Image.new("1", (4, 4), 0)
    image.putpixel((1, 1), 1)
    loaded = load_image(encode(image, "PNG"), max_pixels=LIMIT)
    assert pixel(loaded, (0, 0)) == (0, 0, 0)
    assert pixel(loaded, (1, 1)) == (255, 255, 255)


@pytest.mark.parametrize("fmt", ["GIF", "WEBP", "PNG"])
def test_animation_gives_its_first_frame(fmt):
    frames = [Image.new("RGB", (16, 16), colour) for colour in [(255, 0, 0), (0, 255, 0), (0, 0, 255)]]
    save = {"save_all": True, "append_images": frames[1:], "duration": 100, "loop": 0}
    if fmt == "WEBP":
        save["lossless"] = True
    data = encode(frames[0], fmt, **save)
    assert getattr(Image.open(io.BytesIO(data)), "n_frames", 1) == 3, "the test file must be animated"
    red, green, blue = pixel(load_image(data, max_pixels=LIMIT), (8, 8))
    assert red > 240 and green < 15 and blue < 15


def test_too_many_pixels_refused_from_the_header_before_decoding(monkeypatch):
    data = encode(Image.new("L", (2000, 1000)), "PNG")

    def no_decoding(self):
        raise AssertionError("pixels were decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    with pytest.raises(ImageTooLarge, match="2000x1000"):
        load_image(data, max_pixels=1_000_000)


def png_header_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims a huge size: a decompression bomb's calling card."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    body = struct.pack(">I", len(ihdr)) + chunk + struct.pack(">I", zlib.crc32(chunk))
    idat = b"IDAT" + zlib.compress(b"\0" * 16)
    body += struct.pack(">I", len(idat) - 4) + idat + struct.pack(">I", zlib.crc32(idat))
    return b"\x89PNG\r\n\x1a\n" + body


# 8000²: over our limit only; 10000²: Pillow warns (made an error here, as strict deployments do);
# 200000²: Pillow refuses by itself. All three must come out as ImageTooLarge.
@pytest.mark.filterwarnings("error::PIL.Image.DecompressionBombWarning")
@pytest.mark.parametrize("side", [8_000, 10_000, 200_000])
def test_decompression_bomb_is_refused(side):
    data = png_header_claiming(side, side)
    assert len(data) < 200
    with pytest.raises(ImageTooLarge) as info:
        load_image(data, max_pixels=LIMIT)
    assert isinstance(info.value, ValueError)
    assert "limit" in str(info.value)


def test_truncated_jpeg_is_refused(photo_bytes):
    data = photo_bytes("apple.jpg")
    with pytest.raises(ImageDecodeError, match="truncated"):
        load_image(data[: len(data) // 2], max_pixels=LIMIT)


def test_truncated_png_is_refused(photo_bytes):
    data = photo_bytes("box.png")
    with pytest.raises(ImageDecodeError):
        load_image(data[: len(data) // 2], max_pixels=LIMIT)


@pytest.mark.parametrize("source", [b"", io.BytesIO(b"")])
def test_empty_file_is_refused(source):
    with pytest.raises(ImageDecodeError, match="empty"):
        load_image(source, max_pixels=LIMIT)


def test_text_file_is_refused(tmp_path):
    text = tmp_path / "notes.jpg"
    text.write_text("this is not a photo\n" * 10)
    with pytest.raises(ImageDecodeError, match="not an image"):
        load_image(text, max_pixels=LIMIT)


def test_missing_file_is_a_decode_error(tmp_path):
    with pytest.raises(ImageDecodeError, match="could not be read"):
        load_image(tmp_path / "gone.jpg", max_pixels=LIMIT)


def test_errors_are_value_errors_for_callers():
    assert issubclass(ImageDecodeError, ValueError)
    assert issubclass(ImageTooLarge, ValueError)


def test_large_jpeg_decodes_in_draft_mode(photo_path):
    big = Image.open(photo_path("hammer1.webp")).convert("RGB").resize((2400, 1800))
    data = encode(big, "JPEG", quality=90)
    full = load_image(data, max_pixels=LIMIT)
    draft = load_image(data, max_pixels=LIMIT, draft_size=256)
    assert full.size == (2400, 1800)
    assert draft.size == (600, 450), "DCT scaling by 1/4 keeps both sides >= 1.5 x 256"
    # The draft is a faithful smaller picture, not a crop or a different image.
    reference = np.asarray(full.resize(draft.size, Image.Resampling.BOX), dtype=np.float32)
    assert np.abs(np.asarray(draft, dtype=np.float32) - reference).mean() < 4


def test_draft_keeps_headroom_above_the_resize_size(photo_path):
    data = encode(Image.open(photo_path("apple.jpg")).convert("RGB").resize((1600, 800)), "JPEG")
    assert load_image(data, max_pixels=LIMIT, draft_size=256).size == (800, 400)  # 1/4 would be 200 < 384
    assert load_image(data, max_pixels=LIMIT, draft_size=128).size == (400, 200)
