"""Reading pixels: the value range comes from the file's container (never from its content), colour
modes follow one stated rule, and a test set too large for memory is stopped before decoding."""
import cv2
import numpy as np
import pytest
import scipy.io
import torch
from PIL import Image

from denoise_bench.data.items import ImageItem, ImageRef, check_eval_memory, eval_set_bytes, read_image
from denoise_bench.errors import ConfigError, DataError
from denoise_bench.metrics import psnr_per_image

RNG = np.random.default_rng(0)
GRAY8 = RNG.integers(0, 256, size=(12, 10), dtype=np.uint8)
RGB8 = RNG.integers(0, 256, size=(12, 10, 3), dtype=np.uint8)


def read(path, **kw) -> np.ndarray:
    return read_image(ImageRef(str(path)), **kw)


def one_line_error(kind, fn, *needles) -> str:
    with pytest.raises(kind) as e:
        fn()
    msg = str(e.value)
    assert "\n" not in msg
    for n in needles:
        assert n in msg, msg
    return msg


def write_png16(path, arr: np.ndarray):
    """16-bit PNG: gray through PIL (mode I;16), colour through OpenCV (PIL cannot write it)."""
    if arr.ndim == 2:
        Image.fromarray(arr.astype(np.uint16)).save(path)
    else:
        order = [2, 1, 0, 3][: arr.shape[2]]  # RGB(A) -> OpenCV's BGR(A)
        assert cv2.imwrite(str(path), np.ascontiguousarray(arr.astype(np.uint16)[..., order]))
    return path


def psnr(x: np.ndarray, ref: np.ndarray) -> float:
    to_t = lambda a: torch.from_numpy(a).permute(2, 0, 1)[None].double()  # noqa: E731
    return float(psnr_per_image(to_t(x), to_t(ref)))


# -- value range: the container's depth -------------------------------------------------------------
@pytest.mark.parametrize("original", [GRAY8, RGB8], ids=["gray", "rgb"])
def test_16bit_copy_of_an_8bit_image_reads_identical(tmp_path, original):
    Image.fromarray(original).save(tmp_path / "a8.png")
    write_png16(tmp_path / "a16.png", original.astype(np.uint16) * 257)
    a8, a16 = read(tmp_path / "a8.png"), read(tmp_path / "a16.png")
    assert a8.shape == a16.shape == (12, 10, 1 if original.ndim == 2 else 3)
    assert np.abs(a8 - a16).max() < 1e-6
    np.testing.assert_allclose(a8[..., 0], (original.reshape(12, 10, -1)[..., 0] / 255.0), atol=1e-7)
    estimate = np.clip(a8 + np.random.default_rng(1).normal(0, 0.05, a8.shape), 0, 1)
    assert psnr(estimate, a8) == pytest.approx(psnr(estimate, a16), abs=0.01)
    assert 20 < psnr(estimate, a8) < 35  # the estimate is noisy, not identical


def test_near_black_16bit_image_is_not_read_as_8bit(tmp_path):
    dark = GRAY8.astype(np.uint16)  # all values <= 255 in a 16-bit file
    out = read(write_png16(tmp_path / "dark.png", dark))
    assert out.max() <= 255 / 65535 + 1e-7
    np.testing.assert_allclose(out[..., 0], dark / 65535.0, rtol=1e-6)


def test_12bit_data_in_16bit_files_with_bit_depth(tmp_path):
    v = np.array([[0, 1, 2048], [4000, 4094, 4095]], dtype=np.uint16)
    path = write_png16(tmp_path / "raw12.png", v)
    np.testing.assert_allclose(read(path, bit_depth=12)[..., 0], v / 4095.0, rtol=1e-6)
    assert read(path, bit_depth=12).max() == 1.0
    np.testing.assert_allclose(read(path)[..., 0], v / 65535.0, rtol=1e-6)  # without it: the container's range
    v[0, 0] = 5000
    write_png16(path, v)
    one_line_error(DataError, lambda: read(path, bit_depth=12), "raw12.png", "value 5000 exceeds the 12-bit range",
                   "data.bit_depth=12")


def test_bit_depth_beyond_the_container_or_invalid_is_refused(tmp_path):
    Image.fromarray(GRAY8).save(tmp_path / "g8.png")
    one_line_error(DataError, lambda: read(tmp_path / "g8.png", bit_depth=12), "g8.png", "data.bit_depth=12")
    for bad in (0, 33, 12.5, "12"):
        one_line_error(ConfigError, lambda b=bad: read(tmp_path / "g8.png", bit_depth=b), "data.bit_depth")
    assert read(tmp_path / "g8.png", bit_depth=8).max() == pytest.approx(GRAY8.max() / 255.0, abs=1e-7)


def test_16bit_tiff_gray_and_rgb(tmp_path):
    Image.fromarray(GRAY8.astype(np.uint16) * 257).save(tmp_path / "g16.tif")
    assert Image.open(tmp_path / "g16.tif").mode.startswith("I;16")
    assert np.abs(read(tmp_path / "g16.tif")[..., 0] - GRAY8 / 255.0).max() < 1e-6
    rgb = (RGB8.astype(np.uint16) * 257 + 1)  # low byte used: an 8-bit reading would lose it
    assert cv2.imwrite(str(tmp_path / "rgb16.tif"), np.ascontiguousarray(rgb[..., ::-1]))
    np.testing.assert_allclose(read(tmp_path / "rgb16.tif"), rgb / 65535.0, rtol=1e-6)


def test_16bit_colour_png_keeps_the_low_byte_and_drops_alpha(tmp_path):
    rgba = np.zeros((4, 5, 4), np.uint16)
    rgba[...] = (1000, 2000, 3000, 40000)
    out = read(write_png16(tmp_path / "rgba16.png", rgba))
    assert out.shape == (4, 5, 3)
    np.testing.assert_allclose(out[0, 0], np.array([1000, 2000, 3000]) / 65535.0, rtol=1e-6)


def test_pgm_range_is_its_header_maxval(tmp_path):
    v = np.array([[0, 100, 4095]], dtype=">u2")
    (tmp_path / "a.pgm").write_bytes(b"P5\n# 12-bit\n3 1\n4095\n" + v.tobytes())
    np.testing.assert_allclose(read(tmp_path / "a.pgm")[0, :, 0], [0, 100 / 4095, 1.0], rtol=1e-6)


def test_float_images_are_taken_as_unit_range(tmp_path):
    f = np.array([[0.0, 0.25], [0.5, 1.0]], dtype=np.float32)
    Image.fromarray(f).save(tmp_path / "f.tif")
    np.testing.assert_array_equal(read(tmp_path / "f.tif")[..., 0], f)
    Image.fromarray(f * 255).save(tmp_path / "f255.tif")
    one_line_error(DataError, lambda: read(tmp_path / "f255.tif"), "f255.tif", "[0, 1]")


# -- .mat arrays: the dtype is the container ------------------------------------------------------
def test_mat_arrays_scale_by_their_dtype(tmp_path):
    u16 = (RGB8.astype(np.uint16) * 257 + 3)
    scipy.io.savemat(tmp_path / "d.mat", {"u16": u16, "u8": RGB8, "f": RGB8 / 255.0, "f255": RGB8.astype(float),
                                          "i32": RGB8.astype(np.int32)})
    ref = lambda var: ImageRef(str(tmp_path / "d.mat"), var)  # noqa: E731
    np.testing.assert_allclose(read_image(ref("u16")), u16 / 65535.0, rtol=1e-6)
    np.testing.assert_allclose(read_image(ref("u8")), RGB8 / 255.0, rtol=1e-6)
    np.testing.assert_allclose(read_image(ref("f")), RGB8 / 255.0, rtol=1e-6)
    one_line_error(DataError, lambda: read_image(ref("f255")), "d.mat:f255", "[0, 1]")
    one_line_error(DataError, lambda: read_image(ref("i32")), "d.mat:i32", "data.bit_depth")
    np.testing.assert_allclose(read_image(ref("i32"), bit_depth=8), RGB8 / 255.0, rtol=1e-6)


def test_luma_of_a_float_array_is_not_rounded(tmp_path):
    scipy.io.savemat(tmp_path / "f.mat", {"x": np.full((2, 2, 3), (0.2, 0.4, 0.6))})
    out = read_image(ImageRef(str(tmp_path / "f.mat"), "x"), channels=1)
    np.testing.assert_allclose(out, np.full((2, 2, 1), 0.299 * 0.2 + 0.587 * 0.4 + 0.114 * 0.6), rtol=1e-6)


# -- colour modes: one explicit rule ------------------------------------------------------------
def test_rgba_and_la_drop_alpha_and_keep_the_stored_values(tmp_path):
    Image.new("RGBA", (3, 2), (200, 100, 50, 0)).save(tmp_path / "rgba.png")  # fully transparent
    np.testing.assert_allclose(read(tmp_path / "rgba.png")[1, 2], np.array([200, 100, 50]) / 255.0, rtol=1e-6)
    Image.new("LA", (3, 2), (77, 10)).save(tmp_path / "la.png")
    out = read(tmp_path / "la.png")
    assert out.shape == (2, 3, 1) and out[0, 0, 0] == pytest.approx(77 / 255.0, abs=1e-7)


def test_palette_images_read_as_their_palette_colours(tmp_path):
    p = Image.new("P", (3, 1))
    p.putpalette([0, 0, 0, 255, 0, 0, 10, 20, 30])
    p.putpixel((1, 0), 1)
    p.putpixel((2, 0), 2)
    p.save(tmp_path / "p.png", transparency=1)  # the transparent entry keeps its colour
    np.testing.assert_allclose(read(tmp_path / "p.png")[0], np.array([[0, 0, 0], [255, 0, 0], [10, 20, 30]]) / 255.0,
                               rtol=1e-6)
    g = Image.new("P", (3, 1))
    g.putpalette([0, 0, 0, 90, 90, 90, 250, 250, 250])
    g.putpixel((1, 0), 2)
    g.putpixel((2, 0), 1)
    g.save(tmp_path / "g.png")
    out = read(tmp_path / "g.png")
    assert out.shape == (1, 3, 1)  # gray palette -> gray image
    np.testing.assert_allclose(out[0, :, 0], np.array([0, 250, 90]) / 255.0, rtol=1e-6)
    assert read(tmp_path / "g.png", channels=3).shape == (1, 3, 3)


def test_bilevel_cmyk_and_ycbcr_follow_the_stated_formulas(tmp_path):
    one = Image.new("1", (2, 1), 0)
    one.putpixel((1, 0), 1)
    one.save(tmp_path / "one.png")
    np.testing.assert_array_equal(read(tmp_path / "one.png")[0, :, 0], [0.0, 1.0])
    Image.new("CMYK", (2, 1), (10, 20, 30, 40)).save(tmp_path / "c.tif")
    expected = [round(255 * (1 - c / 255) * (1 - 40 / 255)) for c in (10, 20, 30)]  # 207, 198, 190
    np.testing.assert_allclose(read(tmp_path / "c.tif")[0, 0], np.array(expected) / 255.0, rtol=1e-6)
    Image.new("YCbCr", (2, 1), (100, 90, 200)).save(tmp_path / "y.tif")
    assert Image.open(tmp_path / "y.tif").mode == "YCbCr"
    # JFIF: R = Y + 1.402 (Cr-128) = 200.9, G = Y - 0.344136 (Cb-128) - 0.714136 (Cr-128) = 61.7, B = Y + 1.772 (Cb-128) = 32.7
    np.testing.assert_allclose(read(tmp_path / "y.tif")[0, 0], np.array([201, 62, 33]) / 255.0, rtol=1e-6)


# -- memory guard --------------------------------------------------------------------------------
def _items(tmp_path, n=3, size=(20, 30)):
    items = []
    for k in range(n):
        path = tmp_path / f"{k}.png"
        Image.new("L", (size[1], size[0]), 128).save(path)
        items.append(ImageItem(f"t/{k}", ImageRef(str(path))))
    return items


def test_eval_set_bytes_counts_clean_and_noisy_float32(tmp_path):
    items = _items(tmp_path)
    assert eval_set_bytes(items, 3, None, None) == 3 * 2 * 3 * 20 * 30 * 4  # from the headers
    assert eval_set_bytes(items, 1, 16, None) == 3 * 2 * 1 * 16 * 16 * 4  # centre crop
    assert eval_set_bytes(items, 1, 16, 8) == 3 * 2 * 1 * 8 * 8 * 4  # crop then resize


def test_memory_guard_stops_a_test_set_over_the_limit(tmp_path):
    items = _items(tmp_path)
    need = eval_set_bytes(items, 3, None, 1024)  # 3 images resized to 1024²: 72 MiB
    assert need == 72 * 2**20
    msg = one_line_error(DataError, lambda: check_eval_memory(items, 3, None, 1024, limit_bytes=64 * 2**20),
                         "72.0 MiB", "64.0 MiB", "3 images", "data.test.limit", "data.test.crop")
    assert "available RAM" not in msg  # an explicit limit is named as such
    assert check_eval_memory(items, 3, None, 1024, limit_bytes=need) == need
    assert check_eval_memory(items, 3, None, None) == eval_set_bytes(items, 3, None, None)  # default: half the free RAM
