"""trainer.ema_decay: the model a training stores, validates and tests is the exponential moving average of
the weights it trained, θ_ema ← d·θ_ema + (1 − d)·θ after every step (the first step copies θ)."""
from __future__ import annotations

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from conftest import compose
from denoise_bench.errors import ConfigError
from denoise_bench.training.context import make_trainer


class TinyRegression(L.LightningModule):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(2, 2, 3, padding=1)
        self.bn = torch.nn.BatchNorm2d(2)  # a buffer (running mean / var) is averaged too
        self.seen_in_validation: list[torch.Tensor] = []

    def forward(self, x):
        return self.bn(self.conv(x))

    def training_step(self, batch, batch_idx):
        x, y = batch
        return (self(x) - y).pow(2).mean()

    def validation_step(self, batch, batch_idx):
        self.seen_in_validation.append(self.conv.weight.detach().clone())

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.2)


class RecordWeights(L.Callback):
    """The trained (not averaged) state after every optimiser step."""

    def __init__(self):
        self.states: list[dict] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.states.append({k: v.detach().clone() for k, v in pl_module.state_dict().items()})


def loaders(n: int = 6):
    g = torch.Generator().manual_seed(1)
    data = TensorDataset(torch.randn(n, 2, 5, 5, generator=g), torch.randn(n, 2, 5, 5, generator=g))
    return DataLoader(data, batch_size=1), DataLoader(TensorDataset(data.tensors[0][:1], data.tensors[1][:1]))


def moving_average(states: list[dict], decay: float) -> dict:
    ema = {k: v.clone() for k, v in states[0].items()}
    for state in states[1:]:
        for k, v in state.items():
            if v.is_floating_point():
                ema[k] = decay * ema[k] + (1 - decay) * v
    return ema


def test_the_trained_module_ends_as_the_moving_average_of_its_weights_and_validates_with_it(tmp_path):
    cfg = compose(["trainer.ema_decay=0.5", "trainer.run.val_check_interval=3"], tmp_path)
    module, record = TinyRegression(), RecordWeights()
    train, val = loaders()
    trainer = make_trainer(cfg, max_steps=6, callbacks=[record], default_root_dir=str(tmp_path))
    trainer.fit(module, train_dataloaders=train, val_dataloaders=val)

    assert len(record.states) == 6
    expected = moving_average(record.states, 0.5)
    final = module.state_dict()
    for k, v in expected.items():
        if v.is_floating_point():
            torch.testing.assert_close(final[k], v, rtol=1e-6, atol=1e-7, msg=k)
    assert not torch.allclose(expected["conv.weight"], record.states[-1]["conv.weight"])  # it is not the last
    # the validation after step 3 saw the average of steps 1-3, not the weights of step 3
    torch.testing.assert_close(module.seen_in_validation[0], moving_average(record.states[:3], 0.5)["conv.weight"])


def test_without_ema_decay_the_module_keeps_its_last_weights(tmp_path):
    cfg = compose([], tmp_path)
    assert cfg.trainer.ema_decay is None
    module, record = TinyRegression(), RecordWeights()
    train, val = loaders()
    make_trainer(cfg, max_steps=6, callbacks=[record], default_root_dir=str(tmp_path)).fit(module, train, val)
    torch.testing.assert_close(module.conv.weight.detach(), record.states[-1]["conv.weight"], rtol=0, atol=0)


@pytest.mark.parametrize("decay", ["0", "1", "1.5", "-0.1"])
def test_a_decay_outside_zero_to_one_is_one_line(decay, tmp_path):
    with pytest.raises(ConfigError, match=rf"trainer.ema_decay={float(decay)}: expected a decay in \(0, 1\)"):
        make_trainer(compose([f"trainer.ema_decay={decay}"], tmp_path), max_steps=3)
