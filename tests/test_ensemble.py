"""``eval.self_ensemble``: the x8 flips/rot90 average x̂ = 1/8 Σ_T T⁻¹(D(T(N)))."""
import pytest
import torch
import torch.nn.functional as F

from denoise_bench.errors import ConfigError
from denoise_bench.methods.base import DenoisingMethod
from denoise_bench.methods.ensemble import self_ensemble, use_self_ensemble

SIGMA = torch.tensor([25.0, 50.0])


def blur_d4(x):
    """A 3×3 blur whose kernel has every symmetry of the square, zero padding: commutes with all T."""
    k = torch.tensor([[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]]) / 16
    return F.conv2d(x, k.view(1, 1, 3, 3).repeat(x.shape[1], 1, 1, 1), padding=1, groups=x.shape[1])


def shift_right(x, sigma=None):
    """out[i, j] = x[i, j−1], zero in the first column: not equivariant."""
    return F.pad(x, (1, 0))[..., :, :-1]


@pytest.mark.parametrize("shape", [(2, 1, 6, 6), (2, 3, 5, 9)])
def test_an_equivariant_denoiser_gains_nothing(shape):
    x = torch.rand(*shape, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(self_ensemble(lambda n, s: n, x, SIGMA), x)
    torch.testing.assert_close(self_ensemble(lambda n, s: blur_d4(n), x, SIGMA), blur_d4(x))


@pytest.mark.parametrize("hw", [(6, 6), (5, 9), (9, 4)])
def test_a_shift_averages_into_the_four_neighbour_mean(hw):
    """Conjugating a one-pixel shift by the 8 symmetries gives each of the 4 directions twice, so
    the ensemble is the mean of the 4 neighbours (zero outside): on non-square images too."""
    x = torch.rand(2, 3, *hw, generator=torch.Generator().manual_seed(1))
    cross = torch.tensor([[0.0, 1.0, 0.0], [1.0, 0.0, 1.0], [0.0, 1.0, 0.0]]) / 4
    expected = F.conv2d(x, cross.view(1, 1, 3, 3).repeat(3, 1, 1, 1), padding=1, groups=3)
    out = self_ensemble(shift_right, x, SIGMA)
    assert out.shape == x.shape
    torch.testing.assert_close(out, expected)
    assert not torch.allclose(out, shift_right(x), atol=1e-3)


def test_each_pass_sees_the_transformed_batch_and_the_same_sigmas():
    x = torch.rand(2, 1, 4, 7)
    seen = []

    def record(n, s):
        seen.append((tuple(n.shape[-2:]), s.tolist()))
        return n

    self_ensemble(record, x, SIGMA)
    assert sorted(seen) == sorted([((4, 7), [25.0, 50.0])] * 4 + [((7, 4), [25.0, 50.0])] * 4)


class Toy(DenoisingMethod):
    name = "toy"

    def denoise(self, noisy, sigma):
        return shift_right(noisy)


class Sampler(Toy):
    name = "sampler"
    deterministic_denoise = False


def test_test_step_uses_the_ensemble_only_when_switched_on():
    clean = torch.rand(2, 1, 6, 8, generator=torch.Generator().manual_seed(2))
    batch = {"noisy": clean.clone(), "clean": clean, "sigma": SIGMA, "id": ["a", "b"]}
    method = Toy()
    method.test_step(batch, 0)
    use_self_ensemble(method, True)
    method.test_step(batch, 0)
    single, ens = method.rows[0], method.rows[2]
    mse = lambda est: ((est - clean[:1]) ** 2).mean().item()  # noqa: E731
    assert single["mse"] == pytest.approx(mse(shift_right(clean[:1])), rel=1e-6)
    assert ens["mse"] == pytest.approx(mse(self_ensemble(shift_right, clean[:1], SIGMA[:1])), rel=1e-6)
    assert ens["mse"] != pytest.approx(single["mse"], rel=1e-3)


def test_a_non_deterministic_denoiser_is_refused():
    method = Sampler()
    use_self_ensemble(method, False)
    assert method.self_ensemble is False
    with pytest.raises(ConfigError, match="method=sampler does not denoise deterministically"):
        use_self_ensemble(method, True)


@pytest.mark.parametrize("name", ["noisy", "bm3d", "dncnn", "glow_map", "fdn", "flow_prior"])
def test_every_method_of_the_suite_is_deterministic(name):
    from denoise_bench.methods import method_class

    assert method_class(name).deterministic_denoise is True
