"""``method.weights``: the one weights-file reader, and the DnCNN files people actually have.

Each layout is built here by hand (tiny depth / features, random weights) from its own key scheme,
and the loaded network must reproduce a reference forward pass written directly over the file's
tensors (F.conv2d / F.batch_norm / F.relu), so a wrong key mapping, a lost bias or a missing BN
fails the comparison.
"""
import json

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from conftest import method_cfg, shared_data
from denoise_bench.errors import ConfigError
from denoise_bench.methods.dncnn import DnCNN
from denoise_bench.weights import read_state_dict, sha256_file

FEAT, DEPTH = 6, 4


def conv(g, cin, cout, bias):
    out = {"weight": 0.3 * torch.randn(cout, cin, 3, 3, generator=g)}
    if bias:
        out["bias"] = 0.1 * torch.randn(cout, generator=g)
    return out


def bn(g, c, tracked=True):
    out = {"weight": 1 + 0.2 * torch.randn(c, generator=g), "bias": 0.1 * torch.randn(c, generator=g),
           "running_mean": 0.1 * torch.randn(c, generator=g), "running_var": 0.5 + torch.rand(c, generator=g)}
    if tracked:
        out["num_batches_tracked"] = torch.tensor(7)
    return out


def flat(prefix, layers: dict) -> dict:
    return {f"{prefix}.{i}.{name}": t for i, params in layers.items() for name, t in params.items()}


def kair_zoo(channels=1, depth=DEPTH, seed=0):
    """KAIR's model zoo: model.{0,2,4,...}, every conv biased (BN merged), ReLUs at odd indices."""
    g = torch.Generator().manual_seed(seed)
    sizes = [channels] + [FEAT] * (depth - 1) + [channels]
    return flat("model", {2 * j: conv(g, sizes[j], sizes[j + 1], True) for j in range(depth)})


def paper_code(channels=1, depth=DEPTH, first_bias=True, last_bias=False, seed=0, tracked=True):
    """conv0 relu1, then [conv bn relu] from index 2, last conv: cszn's port (first bias) or ours."""
    g = torch.Generator().manual_seed(seed)
    layers = {0: conv(g, channels, FEAT, first_bias)}
    i = 2
    for _ in range(depth - 2):
        layers[i], layers[i + 1] = conv(g, FEAT, FEAT, False), bn(g, FEAT, tracked)
        i += 3
    layers[i] = conv(g, FEAT, channels, last_bias)
    return flat("dncnn", layers)


def reference_denoise(state: dict, x: torch.Tensor) -> torch.Tensor:
    """noisy − net(noisy), the net read straight off the file: layers in index order, a ReLU after
    every conv (after its BN when one follows) except the last conv."""
    prefix = next(iter(state)).rsplit(".", 2)[0]  # "dncnn", "module.dncnn", "model"
    idx = sorted({int(k[len(prefix) + 1:].split(".")[0]) for k in state})
    kinds = ["bn" if f"{prefix}.{i}.running_mean" in state else "conv" for i in idx]
    h = x
    for n, (i, kind) in enumerate(zip(idx, kinds)):
        p = lambda name: state.get(f"{prefix}.{i}.{name}")  # noqa: E731
        if kind == "conv":
            h = F.conv2d(h, p("weight"), p("bias"), padding=1)
        else:
            h = F.batch_norm(h, p("running_mean"), p("running_var"), p("weight"), p("bias"), False, 0.0, 1e-4)
        last = n == len(idx) - 1
        if not last and not (kind == "conv" and kinds[n + 1] == "bn"):
            h = F.relu(h)
    return x - h


def load(tmp_path, obj, channels=1, **cfg):
    path = tmp_path / "w.pth"
    torch.save(obj, path)
    return DnCNN(method_cfg("dncnn", {"weights": str(path), "depth": 17, "features": 64, **cfg}), image_channels=channels).eval()


def n_convs(method):
    return len([m for m in method.net.modules() if isinstance(m, nn.Conv2d)])


@pytest.mark.parametrize("channels", [1, 3])
def test_kair_model_zoo_layout_loads_with_merged_batch_norm(tmp_path, channels):
    state = kair_zoo(channels)
    method = load(tmp_path, state, channels)  # depth 17 / features 64 in the config: the file wins
    assert n_convs(method) == DEPTH and not any(isinstance(m, nn.BatchNorm2d) for m in method.net.modules())
    x = torch.rand(2, channels, 9, 11)
    with torch.no_grad():
        torch.testing.assert_close(method.denoise(x, None), reference_denoise(state, x))


def test_authors_pytorch_port_loads_with_a_bias_on_the_first_conv_only(tmp_path):
    state = paper_code(first_bias=True, last_bias=False)
    method = load(tmp_path, state)
    convs = [m for m in method.net.modules() if isinstance(m, nn.Conv2d)]
    assert [c.bias is not None for c in convs] == [True] + [False] * (DEPTH - 1)
    bns = [m for m in method.net.modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(bns) == DEPTH - 2 and all(b.eps == 1e-4 for b in bns)
    x = torch.rand(1, 1, 10, 10)
    with torch.no_grad():
        torch.testing.assert_close(method.denoise(x, None), reference_denoise(state, x))


@pytest.mark.parametrize("wrap", ["plain", "module", "lightning", "artifact"])
def test_our_layout_loads_however_it_was_saved(tmp_path, wrap):
    state = paper_code(first_bias=False, last_bias=False, tracked=False)
    saved = {"plain": state, "module": {f"module.{k}": v for k, v in state.items()},
             "lightning": {"state_dict": {f"net.{k}": v for k, v in state.items()}, "epoch": 3},
             "artifact": {f"net.{k}": v for k, v in state.items()}}[wrap]
    method = load(tmp_path, saved)
    x = torch.rand(1, 1, 8, 12)
    with torch.no_grad():
        torch.testing.assert_close(method.denoise(x, None), reference_denoise(state, x))


def test_both_end_biases_of_a_trained_bias_model_load(tmp_path):
    """``method.bias=true`` trains biases on both end convs; its artifact must load back."""
    trained = DnCNN(method_cfg("dncnn", {"depth": DEPTH, "features": FEAT, "bias": True}), image_channels=1)
    convs = [m for m in trained.net.modules() if isinstance(m, nn.Conv2d)]
    assert [c.bias is not None for c in convs] == [True, False, False, True]
    with torch.no_grad():
        for c in (convs[0], convs[-1]):
            c.bias.normal_()
    state = {k: v for k, v in trained.state_dict().items()}
    method = load(tmp_path, state)
    x = torch.rand(1, 1, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(method.denoise(x, None), trained.eval().denoise(x, None))


@pytest.mark.parametrize("name, depth", [("DnCNN-S-15.pth", 17), ("DnCNN-S-25.pth", 17), ("DnCNN-S-50.pth", 17),
                                         ("DnCNN-B.pth", 20)])
def test_the_shared_published_files_load(name, depth):
    path = shared_data("weights", "dncnn", name)
    method = DnCNN(method_cfg("dncnn", {"weights": str(path)}), image_channels=1).eval()
    assert n_convs(method) == depth
    assert method.weights_sha256 == sha256_file(path)
    x = torch.rand(1, 1, 16, 16)
    raw = torch.load(path, map_location="cpu", weights_only=True)  # keys module.dncnn.<i>.*
    with torch.no_grad():
        torch.testing.assert_close(method.denoise(x, None), reference_denoise(raw, x), rtol=1e-4, atol=1e-5)


def test_files_that_fit_no_layout_are_one_line_errors(tmp_path):
    half_bn = paper_code(first_bias=False)
    for name in ("running_mean", "running_var", "weight", "bias", "num_batches_tracked"):
        del half_bn[f"dncnn.3.{name}"]  # BN after the second conv only: no layout has that
    with pytest.raises(ConfigError, match="fits none of the DnCNN layouts") as e:
        load(tmp_path, half_bn)
    assert "\n" not in str(e.value) and "KAIR" in str(e.value) and "cszn" in str(e.value)
    with pytest.raises(ConfigError, match="not a DnCNN state dict"):
        load(tmp_path, {"encoder.0.weight": torch.zeros(4, 1, 3, 3)})
    with pytest.raises(ConfigError, match="3-channel"):
        load(tmp_path, kair_zoo(channels=3), channels=1)


# -- the shared reader --------------------------------------------------------------------------------
def test_reader_unwraps_checkpoints_and_strips_data_parallel(tmp_path):
    w = torch.arange(3.0)
    for obj in ({"module.a.weight": w}, {"state_dict": {"module.a.weight": w}, "epoch": 1},
                {"params": {"a.weight": w}}, {"model_state_dict": {"a.weight": w}, "optimizer_state": {}}):
        torch.save(obj, tmp_path / "f.pt")
        state = read_state_dict(tmp_path / "f.pt", "method.weights")
        assert list(state) == ["a.weight"] and torch.equal(state["a.weight"], w)


def test_reader_refusals_name_the_config_key(tmp_path):
    with pytest.raises(ConfigError, match=r"not found \(prior.weights\)"):
        read_state_dict(tmp_path / "missing.pt", "prior.weights")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ConfigError, match=r"cannot read weights .*method.weights"):
        read_state_dict(tmp_path / "junk.pt", "method.weights")
    torch.save([torch.zeros(2)], tmp_path / "list.pt")
    with pytest.raises(ConfigError, match=r"not a state dict \(method.weights\)"):
        read_state_dict(tmp_path / "list.pt", "method.weights")
    torch.save(nn.Linear(2, 2), tmp_path / "whole.pt")  # torch.save(model), as cszn's main_train.py does
    with pytest.raises(ConfigError, match="pickled Python objects") as e:
        read_state_dict(tmp_path / "whole.pt", "method.weights")
    assert "\n" not in str(e.value) and "state_dict()" in str(e.value)


def test_sha256_of_a_file():
    import tempfile

    with tempfile.NamedTemporaryFile(delete=False) as f:
        f.write(b"abc")
    assert sha256_file(f.name) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


# -- the other methods read through it ------------------------------------------------------------------
def _trained_flow_prior(**resnet):
    from denoise_bench.methods.flow_prior import FlowPriorDenoiser

    method = FlowPriorDenoiser(method_cfg("flow_prior", {"resnet": {"blocks": 2, "hidden": 4, **resnet}}), image_channels=1)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in method.net.parameters():
            p.add_(0.2 * torch.randn(p.shape, generator=g))
    return method


def test_flow_prior_loads_its_resnet_from_method_weights(tmp_path):
    from denoise_bench.methods.flow_prior import FlowPriorDenoiser

    src = _trained_flow_prior().eval()
    (tmp_path / "model.pt").write_bytes(b"")
    torch.save(src.state_dict(), tmp_path / "model.pt")
    cfg = method_cfg("flow_prior", {"weights": str(tmp_path / "model.pt"), "resnet": {"blocks": 2, "hidden": 4}})
    method = FlowPriorDenoiser(cfg, image_channels=1).eval()
    method.prepare(None)  # with weights there is no prior to load or train
    x = torch.rand(1, 1, 12, 12)
    untrained = FlowPriorDenoiser(method_cfg("flow_prior", {"resnet": {"blocks": 2, "hidden": 4}}), image_channels=1).eval()
    with torch.no_grad():
        torch.testing.assert_close(method.denoise(x, None), src.denoise(x, None))
        assert not torch.allclose(untrained.denoise(x, None), src.denoise(x, None), atol=1e-3)


def test_flow_prior_refuses_weights_of_another_resnet(tmp_path):
    from denoise_bench.methods.flow_prior import FlowPriorDenoiser

    torch.save(_trained_flow_prior().state_dict(), tmp_path / "model.pt")
    with pytest.raises(ConfigError, match="does not fit this flow_prior"):
        FlowPriorDenoiser(method_cfg("flow_prior", {"weights": str(tmp_path / "model.pt"), "resnet": {"blocks": 3, "hidden": 4}}))
    # same shapes, another input map: only the artifact's meta.json can tell
    (tmp_path / "meta.json").write_text(json.dumps(
        {"config": {"method": {"name": "flow_prior", "resnet": {"blocks": 2, "hidden": 4, "input": "identity"}}}}))
    with pytest.raises(ConfigError, match=r"another config \(input=identity \(ours logit\)\)"):
        FlowPriorDenoiser(method_cfg("flow_prior", {"weights": str(tmp_path / "model.pt"), "resnet": {"blocks": 2, "hidden": 4}}))


def test_fdn_loads_its_artifact_through_the_reader(tmp_path):
    from denoise_bench.methods.fdn import FDN

    cfg = {"flow_blocks": 1, "sof_blocks": 1, "growth": 4}
    torch.manual_seed(0)
    src = FDN(method_cfg("fdn", cfg), image_channels=1).eval()
    torch.save({"state_dict": src.state_dict()}, tmp_path / "last.ckpt")  # a Lightning checkpoint
    method = FDN(method_cfg("fdn", {**cfg, "weights": str(tmp_path / "last.ckpt")}), image_channels=1).eval()
    x = torch.rand(1, 1, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(method.denoise(x, None), src.denoise(x, None))
    with pytest.raises(ConfigError, match=r"not found \(method.weights\)"):
        FDN(method_cfg("fdn", {**cfg, "weights": str(tmp_path / "none.pt")}), image_channels=1)
