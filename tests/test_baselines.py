"""The baselines: noisy (identity), BM3D (the bm3d package) and DnCNN (published weights load)."""
import numpy as np
import pytest
import torch

from conftest import method_cfg, shared_data
from denoise_bench.data.noise import NoiseSpec, seeded_noisy
from denoise_bench.errors import ConfigError
from denoise_bench.methods import method_class
from denoise_bench.methods.bm3d import BM3D
from denoise_bench.methods.dncnn import DnCNN, DnCNNNet
from denoise_bench.metrics import image_metrics


def smooth_image(channels=1, size=48, seed=0):
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    img = 0.5 + 0.3 * torch.sin(xx / 5.0) * torch.cos(yy / 7.0)
    img = img.expand(channels, size, size) + 0.1 * torch.rand(channels, 1, 1, generator=g)
    return img.clamp(0, 1).float()


def noisy_batch(channels=1, n=2, sigma=25.0):
    clean = torch.stack([smooth_image(channels, seed=i) for i in range(n)])
    noisy = torch.stack([seeded_noisy(c, f"img{i}", NoiseSpec(sigma))[0] for i, c in enumerate(clean)])
    return clean, noisy, torch.full((n,), sigma)


def test_noisy_method_is_the_identity():
    clean, noisy, sigma = noisy_batch()
    assert torch.equal(method_class("noisy")({}).denoise(noisy, sigma), noisy)


def test_unknown_method_name_is_a_config_error():
    with pytest.raises(ConfigError, match="choose one of"):
        method_class("nope")


@pytest.mark.parametrize("channels", [1, 3])
def test_bm3d_denoises_gray_and_colour(channels):
    clean, noisy, sigma = noisy_batch(channels)
    out = BM3D(method_cfg("bm3d", {"run": {"workers": 1}}), image_channels=channels).denoise(noisy, sigma)
    assert out.shape == noisy.shape
    gain = image_metrics(out, clean)["psnr"] - image_metrics(noisy, clean)["psnr"]
    assert torch.all(gain > 6), gain


def test_bm3d_worker_processes_give_the_serial_result_bit_for_bit():
    """Each image runs single-threaded in the library, so neither the worker count nor the batching
    changes a result (the library's own threads add in a varying order)."""
    clean, noisy, sigma = noisy_batch(n=3)
    serial = BM3D(method_cfg("bm3d", {"run": {"workers": 1}})).denoise(noisy, sigma)
    method = BM3D(method_cfg("bm3d", {"run": {"workers": 2}}))
    parallel = method.denoise(noisy, sigma)
    method.on_test_end()
    alone = BM3D(method_cfg("bm3d", {"run": {"workers": 2}})).denoise(noisy[1:2], sigma[1:2])
    assert torch.equal(serial, parallel)
    assert torch.equal(alone, serial[1:2])


def test_bm3d_unknown_profile_is_a_config_error():
    with pytest.raises(ConfigError, match="method.profile='fast'"):
        BM3D(method_cfg("bm3d", {"profile": "fast"}))


def test_bm3d_estimates_the_level_for_real_noise():
    clean, noisy, _ = noisy_batch()
    out = BM3D(method_cfg("bm3d", {"run": {"workers": 1}})).denoise(noisy, torch.full((2,), float("nan")))
    assert torch.all(image_metrics(out, clean)["psnr"] > image_metrics(noisy, clean)["psnr"] + 5)


def test_dncnn_s_has_the_papers_size():
    # 17 layers, 64 features, gray: about 0.56 M parameters (DnCNN paper)
    assert sum(p.numel() for p in DnCNNNet(1, 17, 64).parameters()) == 556_032
    net = DnCNNNet(1, 20, 64)
    assert len([m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]) == 20


@pytest.mark.parametrize("prefix", ["", "module."])
def test_dncnn_loads_state_dicts_with_or_without_the_module_prefix(tmp_path, prefix):
    src = DnCNNNet(1, 5, 16)
    path = tmp_path / "w.pth"
    torch.save({prefix + k: v for k, v in src.state_dict().items()}, path)
    method = DnCNN(method_cfg("dncnn", {"weights": str(path), "depth": 17, "features": 64}), image_channels=1)  # shape read off the file
    x = torch.rand(1, 1, 16, 16)
    src.eval(), method.eval()
    assert torch.allclose(method.denoise(x, None), x - src(x))


def test_dncnn_refuses_weights_that_do_not_fit(tmp_path):
    path = tmp_path / "w.pth"
    torch.save({"dncnn.0.weight": torch.zeros(8, 3, 3, 3)}, path)
    with pytest.raises(ConfigError, match="3-channel"):
        DnCNN(method_cfg("dncnn", {"weights": str(path)}), image_channels=1)
    torch.save({"something.else": torch.zeros(3)}, path)
    with pytest.raises(ConfigError, match="not a DnCNN"):
        DnCNN(method_cfg("dncnn", {"weights": str(path)}), image_channels=1)
    with pytest.raises(ConfigError, match="not found"):
        DnCNN(method_cfg("dncnn", {"weights": str(tmp_path / "missing.pth")}), image_channels=1)


def test_published_dncnn_s25_denoises_a_set12_image():
    weights = shared_data("weights", "dncnn", "DnCNN-S-25.pth")
    from denoise_bench.data.items import ImageRef, read_image

    img = read_image(ImageRef(str(shared_data("Set12", "01.png"))), 1)
    clean = torch.from_numpy(img.transpose(2, 0, 1))[None, :, :128, :128].contiguous()
    noisy = seeded_noisy(clean[0], "Set12/01", NoiseSpec(25.0))[0][None]
    method = DnCNN(method_cfg("dncnn", {"weights": str(weights)}), image_channels=1).eval()
    with torch.no_grad():
        gain = image_metrics(method.denoise(noisy, None), clean)["psnr"] - image_metrics(noisy, clean)["psnr"]
    assert gain.item() > 7.0


def test_dncnn_training_step_lowers_the_loss():
    torch.manual_seed(0)
    method = DnCNN(method_cfg("dncnn", {"depth": 4, "features": 16, "lr": 1e-3}), image_channels=1)
    clean = torch.stack([smooth_image(seed=i)[:, :24, :24] for i in range(8)])
    opt = torch.optim.Adam(method.parameters(), lr=1e-3)
    losses = []
    for _ in range(30):
        noisy = clean + 25 / 255 * torch.randn_like(clean)
        loss = method.training_step({"clean": clean, "noisy": noisy, "sigma": torch.full((8,), 25.0)}, 0)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:5])
