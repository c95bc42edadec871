"""PSNR / SSIM / MSE per image agree with scikit-image on real photographs."""
import numpy as np
import pytest
import torch
from skimage import data
from skimage.metrics import mean_squared_error, peak_signal_noise_ratio, structural_similarity

from denoise_bench.metrics import MetricProtocol, image_metrics


def _pair(rgb: bool, sigma=0.1, seed=0):
    img = (data.astronaut() if rgb else data.camera())[:128, :160].astype(np.float64) / 255.0
    rng = np.random.default_rng(seed)
    noisy = np.clip(img + sigma * rng.standard_normal(img.shape), 0, 1)
    return img, noisy


def _t(a):
    a = a if a.ndim == 3 else a[..., None]
    return torch.from_numpy(a.transpose(2, 0, 1)).unsqueeze(0)


@pytest.mark.parametrize("rgb", [False, True])
def test_values_match_scikit_image(rgb):
    clean, noisy = _pair(rgb)
    m = image_metrics(_t(noisy), _t(clean))
    assert m["psnr"].item() == pytest.approx(peak_signal_noise_ratio(clean, noisy, data_range=1.0), abs=1e-6)
    assert m["mse"].item() == pytest.approx(mean_squared_error(clean, noisy), rel=1e-9)
    ref_ssim = structural_similarity(clean, noisy, data_range=1.0, gaussian_weights=True, sigma=1.5,
                                     use_sample_covariance=False, channel_axis=-1 if rgb else None)
    assert m["ssim"].item() == pytest.approx(ref_ssim, abs=2e-4)


def test_psnr_is_averaged_per_image_not_pooled():
    c1, n1 = _pair(False, sigma=0.02, seed=1)
    c2, n2 = _pair(False, sigma=0.2, seed=2)
    m = image_metrics(torch.cat([_t(n1), _t(n2)]), torch.cat([_t(c1), _t(c2)]))
    per_image = [peak_signal_noise_ratio(c1, n1, data_range=1), peak_signal_noise_ratio(c2, n2, data_range=1)]
    pooled = 10 * np.log10(1 / np.mean([mean_squared_error(c1, n1), mean_squared_error(c2, n2)]))
    assert m["psnr"].numpy() == pytest.approx(per_image, abs=1e-6)
    assert m["psnr"].mean().item() != pytest.approx(pooled, abs=0.5)


def test_output_is_clamped_before_measuring():
    clean, _ = _pair(False)
    over = clean + 0.3  # values above 1 must count as 1
    m = image_metrics(_t(over), _t(clean))
    assert m["psnr"].item() == pytest.approx(peak_signal_noise_ratio(clean, np.clip(over, 0, 1), data_range=1), abs=1e-6)


def test_uint8_rounding_switch():
    clean, noisy = _pair(False, sigma=0.05)
    q = lambda a: np.round(a * 255) / 255  # noqa: E731
    m = image_metrics(_t(noisy), _t(clean), MetricProtocol(quantize=True))
    assert m["psnr"].item() == pytest.approx(peak_signal_noise_ratio(q(clean), q(noisy), data_range=1), abs=1e-6)
    assert m["psnr"].item() != pytest.approx(image_metrics(_t(noisy), _t(clean))["psnr"].item(), abs=1e-4)


def test_y_channel_and_border_switches():
    clean, noisy = _pair(True, sigma=0.05)
    y = lambda a: 16 / 255 + (a @ np.array([65.481, 128.553, 24.966])) / 255  # noqa: E731
    m = image_metrics(_t(noisy), _t(clean), MetricProtocol(y_channel=True, border=4))
    ref = peak_signal_noise_ratio(y(clean)[4:-4, 4:-4], y(noisy)[4:-4, 4:-4], data_range=1)
    assert m["psnr"].item() == pytest.approx(ref, abs=1e-6)


# -- the BT.601 luma side by side (colour data) -------------------------------------------------------
def _y(a):
    """BasicSR's ``to_y_channel`` on [0, 1]: (16 + 65.481 R + 128.553 G + 24.966 B) / 255, not rounded."""
    return (16.0 + 65.481 * a[..., 0] + 128.553 * a[..., 1] + 24.966 * a[..., 2]) / 255.0


def _skimage_ssim(a, b):
    return structural_similarity(a, b, data_range=1.0, gaussian_weights=True, sigma=1.5, use_sample_covariance=False)


@pytest.mark.parametrize("protocol", [MetricProtocol(), MetricProtocol(quantize=True, border=3)])
def test_colour_images_also_get_psnr_and_ssim_on_the_luma(protocol):
    clean, noisy = _pair(True, sigma=0.08)
    m = image_metrics(_t(noisy), _t(clean), protocol)
    q = (lambda a: np.round(a * 255) / 255) if protocol.quantize else (lambda a: a)  # noqa: E731
    b = protocol.border
    crop = (lambda a: a[b:-b, b:-b]) if b else (lambda a: a)  # noqa: E731
    yc, yn = crop(_y(q(clean))), crop(_y(q(noisy)))
    assert m["psnr_y"].item() == pytest.approx(peak_signal_noise_ratio(yc, yn, data_range=1.0), abs=1e-6)
    assert m["ssim_y"].item() == pytest.approx(_skimage_ssim(yc, yn), abs=2e-4)
    # the RGB numbers are unchanged beside them
    assert m["psnr"].item() == pytest.approx(
        peak_signal_noise_ratio(crop(q(clean)), crop(q(noisy)), data_range=1.0), abs=1e-6)
    assert m["psnr_y"].item() > m["psnr"].item() + 0.5  # luma averages the three channels' noise


def test_gray_images_have_no_luma_metrics_and_y_channel_mode_repeats_them():
    clean, noisy = _pair(False)
    assert set(image_metrics(_t(noisy), _t(clean))) == {"psnr", "ssim", "mse"}
    c, n = _pair(True)
    m = image_metrics(_t(n), _t(c), MetricProtocol(y_channel=True))
    assert m["psnr"].item() == pytest.approx(peak_signal_noise_ratio(_y(c), _y(n), data_range=1.0), abs=1e-6)
    assert torch.equal(m["psnr_y"], m["psnr"]) and torch.equal(m["ssim_y"], m["ssim"])


def test_summary_has_the_luma_metrics_for_colour_rows_only():
    from denoise_bench.outputs import summarise

    gray = [{"psnr": 30.0, "ssim": 0.8, "mse": 1e-3}, {"psnr": 32.0, "ssim": 0.9, "mse": 6e-4}]
    assert set(summarise(gray)) == {"psnr", "ssim", "mse"}
    colour = [{**r, "psnr_y": r["psnr"] + 1.0, "ssim_y": r["ssim"] + 0.05} for r in gray]
    s = summarise(colour)
    assert s["psnr_y"]["mean"] == pytest.approx(32.0) and s["psnr_y"]["std"] == pytest.approx(np.sqrt(2.0))
    assert s["ssim_y"]["mean"] == pytest.approx(0.9) and s["psnr"]["mean"] == pytest.approx(31.0)


@pytest.mark.parametrize("rgb", [False, True])
def test_per_image_rows_carry_the_luma_columns_for_colour_data(rgb):
    from denoise_bench.methods import method_class

    clean, noisy = _pair(rgb)
    method = method_class("noisy")({}, image_channels=3 if rgb else 1)
    method.test_step({"noisy": _t(noisy).float(), "clean": _t(clean).float(), "sigma": torch.tensor([25.0]),
                      "id": ["astronaut" if rgb else "camera"]}, 0)
    (row,) = method.rows
    assert ("psnr_y" in row and "ssim_y" in row) == rgb
    if rgb:
        assert row["psnr_y"] == pytest.approx(peak_signal_noise_ratio(_y(clean), _y(noisy), data_range=1.0), abs=1e-4)
