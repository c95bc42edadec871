"""The CPU fast paths (training/speed.py) change speed, not numbers."""
from __future__ import annotations

import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

from conftest import method_cfg, prior_cfg
from denoise_bench.flows import Glow
from denoise_bench.methods.fdn import FDN
from denoise_bench.training.speed import adam, channels_last


def _fdn():
    torch.manual_seed(0)
    return FDN(method_cfg("fdn", {"sof_blocks": 2, "growth": 8}), 3)


def test_fdn_in_channels_last_gives_the_same_outputs_and_gradients():
    x = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    plain, fast = _fdn(), channels_last(_fdn())
    assert fast.net[3].g1.convs[0].weight.is_contiguous(memory_format=torch.channels_last)
    losses = []
    for m in (plain, fast):
        parts = m.losses(x + 0.1, x)
        parts["loss"].backward()
        losses.append((parts["loss"].item(), m.net[3].g1.convs[0].weight.grad.clone()))
    assert losses[0][0] == pytest.approx(losses[1][0], rel=1e-5)
    torch.testing.assert_close(losses[0][1], losses[1][1], rtol=1e-4, atol=1e-6)


class ConvolutionInputs(TorchFunctionMode):
    """Records, for every convolution called, whether its input is in a channels-last layout (channel stride
    1: channels-last tensors and channel slices of them), i.e. needs no conversion to a channels-last weight."""

    def __init__(self):
        super().__init__()
        self.channels_last: list[bool] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if func in (F.conv2d, F.conv_transpose2d):
            self.channels_last.append(args[0].stride(1) == 1)
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("downscale", ["haar", "squeeze"])
def test_fdn_in_channels_last_stays_in_it_through_every_convolution_of_training(downscale):
    """An NCHW batch enters; every convolution of f and f⁻¹ reads channels-last data (before, the Haar
    reshape and the 1×1 convolutions turned the flow back to NCHW, and oneDNN converted the input of 120
    of the quick FDN's 160 3×3 convolutions on every step)."""
    torch.manual_seed(0)
    fdn = channels_last(FDN(method_cfg("fdn", {"sof_blocks": 2, "growth": 8, "downscale": downscale}), 3))
    x = torch.rand(2, 3, 16, 16)
    with ConvolutionInputs() as seen:
        fdn.losses(x + 0.1, x)["loss"].backward()
    assert len(seen.channels_last) > 20 and all(seen.channels_last)


def test_glow_in_channels_last_stays_in_it_and_gives_the_same_density_and_gradients():
    torch.manual_seed(0)
    cfg = prior_cfg()
    x = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    results = []
    for fast in (False, True):
        torch.manual_seed(0)
        glow = Glow(3, levels=int(cfg.levels), steps=int(cfg.steps), hidden=int(cfg.hidden))
        with torch.no_grad():
            glow.log_prob(x, dequantize=False)  # ActNorm init
        glow = channels_last(glow) if fast else glow
        with ConvolutionInputs() as seen:
            log_p = glow.log_prob(x, dequantize=False)
            log_p.sum().backward()
        assert all(seen.channels_last) == fast
        coupling = glow.levels[0][1][2].net[2]
        results.append((log_p.detach(), coupling.weight.grad.clone()))
    torch.testing.assert_close(results[0][0], results[1][0], rtol=1e-5, atol=1e-3)
    torch.testing.assert_close(results[0][1], results[1][1], rtol=1e-4, atol=1e-6)


def test_fused_adam_takes_the_steps_of_the_plain_one():
    params = [torch.nn.Parameter(torch.randn(5, 3, generator=torch.Generator().manual_seed(i))) for i in range(2)]
    twins = [torch.nn.Parameter(p.detach().clone()) for p in params]
    fused, plain = adam(params, lr=1e-2), torch.optim.Adam(twins, lr=1e-2)
    assert fused.defaults["fused"] is True
    for step in range(5):
        for group in (params, twins):
            for p in group:
                p.grad = torch.sin(p.detach() * (step + 1))
        fused.step()
        plain.step()
    for a, b in zip(params, twins):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc allocator setting")
def test_large_activations_reuse_their_pages_instead_of_faulting_them_in_on_every_call():
    """A conv net whose activations exceed glibc's 32 MiB mmap threshold (64 features × 256² × 2 images =
    32 MiB each): by default every call faults every page in again; with keep_freed_memory a second
    call after the first two reuses the pages (the DnCNN batch-4 slowdown in benchmarks/RESULTS.md)."""
    code = """
import resource, sys, torch
from denoise_bench.training.speed import keep_freed_memory
if sys.argv[1] == "keep":
    assert keep_freed_memory()
torch.set_num_threads(1)
net = torch.nn.Sequential(torch.nn.Conv2d(1, 64, 3, padding=1), torch.nn.ReLU(),
                          torch.nn.Conv2d(64, 64, 1), torch.nn.ReLU(), torch.nn.Conv2d(64, 1, 3, padding=1))
x = torch.rand(2, 1, 256, 256)
faults = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_minflt
with torch.inference_mode():
    net(x); net(x)  # the heap settles into the pattern of one call
    before = faults(); net(x); print(faults() - before)
"""
    counts = {mode: int(subprocess.run([sys.executable, "-c", code, mode], capture_output=True, text=True,
                                       check=True).stdout.split()[-1]) for mode in ("keep", "default")}
    assert counts["default"] > 10_000  # 32 MiB activations = 8,192 pages each, faulted in again
    assert counts["keep"] < 1_000
