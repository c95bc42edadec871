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
