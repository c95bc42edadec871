"""Datasets and the data module: built-in photographs, any image folder, clear errors on bad input."""
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from conftest import REPO, write_images
from denoise_bench.data.datamodule import DenoisingDataModule
from denoise_bench.data.items import ImageRef, read_image
from denoise_bench.data.noise import NoiseSpec
from denoise_bench.data.sources import list_items
from denoise_bench.errors import ConfigError, DataError


def data_cfg(name: str, **overrides):
    cfg = OmegaConf.load(REPO / "conf" / "data" / f"{name}.yaml")
    if "defaults" in cfg:  # builtin_rgb extends builtin
        base = OmegaConf.load(REPO / "conf" / "data" / "builtin.yaml")
        cfg = OmegaConf.merge(base, {k: v for k, v in cfg.items() if k != "defaults"})
    return OmegaConf.merge(cfg, overrides)


def test_builtin_splits_are_disjoint_and_need_no_download():
    cfg = data_cfg("builtin")
    ids = {split: {i.id for i in list_items(cfg, split)} for split in ("train", "val", "test")}
    assert ids["test"] and ids["train"] and ids["val"]
    assert not ids["train"] & ids["test"] and not ids["train"] & ids["val"] and not ids["val"] & ids["test"]
    for item in list_items(cfg, "test"):
        assert Path(item.clean.path).is_file()


@pytest.mark.parametrize("name,channels", [("builtin", 1), ("builtin_rgb", 3)])
def test_builtin_gray_and_colour_variants(name, channels):
    dm = DenoisingDataModule(data_cfg(name, test={"crop": 64}), NoiseSpec(25.0))
    batch = next(iter(dm.test_dataloader()))
    assert batch["clean"].shape[1:] == (channels, 64, 64)
    assert batch["noisy"].shape == batch["clean"].shape
    assert torch.all(batch["sigma"] == 25.0)


def test_a_cell_can_evaluate_the_validation_images_instead_of_the_test_images():
    """+data.test.split=val: settings are chosen on validation images; the test images stay untouched."""
    cfg = data_cfg("builtin", test={"split": "val"})
    dm = DenoisingDataModule(cfg, NoiseSpec(25.0))
    val_ids = {i.id for i in list_items(cfg, "val")}
    assert {s["id"] for s in dm.test_set().samples} == val_ids
    assert not val_ids & {i.id for i in list_items(cfg, "test")}
    assert "val split" in dm.describe()
    with pytest.raises(ConfigError, match="data.test.split='train'"):
        DenoisingDataModule(data_cfg("builtin", test={"split": "train"}), NoiseSpec(25.0)).test_set()


def test_folder_reader_lists_images_with_stable_ids(image_folder):
    items = list_items(data_cfg("folder", root=str(image_folder)), "test")
    assert [i.id for i in items] == ["imgs/00", "imgs/01", "imgs/02"]


def test_test_noise_is_identical_across_data_modules(image_folder):
    cfg = data_cfg("folder", root=str(image_folder))
    a = DenoisingDataModule(cfg, NoiseSpec(25.0)).test_set()
    b = DenoisingDataModule(cfg, NoiseSpec(25.0)).test_set()
    assert all(torch.equal(x["noisy"], y["noisy"]) for x, y in zip(a.samples, b.samples))


def test_images_of_one_shape_are_batched_together(tmp_path):
    write_images(tmp_path / "mix", 3, size=(32, 32))
    write_images(tmp_path / "mix", 2, size=(40, 48), prefix="b")
    dm = DenoisingDataModule(data_cfg("folder", root=str(tmp_path / "mix"), test_batch_size=8), NoiseSpec(15.0))
    shapes = sorted(tuple(b["clean"].shape) for b in dm.test_dataloader())
    assert shapes == [(2, 1, 40, 48), (3, 1, 32, 32)]


def test_training_batches_are_random_crops_with_fresh_noise(image_folder):
    cfg = data_cfg("folder", root=str(image_folder), train_root=str(image_folder), patch_size=24, batch_size=4)
    dm = DenoisingDataModule(cfg, NoiseSpec(25.0), train_steps=3)
    batches = list(dm.train_dataloader())
    assert len(batches) == 3
    assert batches[0]["clean"].shape == (4, 1, 24, 24)
    assert (batches[0]["noisy"] - batches[0]["clean"]).std().item() == pytest.approx(25 / 255, rel=0.2)


def test_unpaired_training_batches_carry_no_clean_image(image_folder):
    cfg = data_cfg("folder", root=str(image_folder), train_root=str(image_folder), patch_size=24, batch_size=2)
    batch = next(iter(DenoisingDataModule(cfg, NoiseSpec(25.0), train_steps=1, unpaired=True).train_dataloader()))
    assert "clean" not in batch and batch["noisy"].shape == (2, 1, 24, 24)


# -- bad input: one line naming the file or value, and what was expected ---------------------------
def _one_line_error(fn, *needles):
    with pytest.raises(DataError) as e:
        fn()
    msg = str(e.value)
    assert "\n" not in msg
    for n in needles:
        assert n in msg
    return msg


def test_missing_root_is_reported(tmp_path):
    _one_line_error(lambda: list_items(data_cfg("folder", root=None), "test"), "data.root", "expected")
    _one_line_error(lambda: list_items(data_cfg("folder", root=str(tmp_path / "nope")), "test"), "nope", "not found")


def test_empty_folder_is_reported(tmp_path):
    (tmp_path / "empty").mkdir()
    _one_line_error(lambda: list_items(data_cfg("folder", root=str(tmp_path / "empty")), "test"), "empty", "no image")


def test_corrupt_image_is_reported_with_its_path(tmp_path, image_folder):
    bad = image_folder / "03.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\nthis is not a png")
    _one_line_error(lambda: read_image(ImageRef(str(bad))), str(bad), "cannot decode")
    cfg = data_cfg("folder", root=str(image_folder))
    _one_line_error(lambda: DenoisingDataModule(cfg, NoiseSpec(25.0)).test_set(), "03.png")


def test_crop_larger_than_image_is_reported(image_folder):
    cfg = data_cfg("folder", root=str(image_folder), test={"crop": 512})
    _one_line_error(lambda: DenoisingDataModule(cfg, NoiseSpec(25.0)).test_set(), "00.png", "smaller than the crop")
    cfg = data_cfg("folder", root=str(image_folder), train_root=str(image_folder), patch_size=100)
    _one_line_error(lambda: DenoisingDataModule(cfg, NoiseSpec(25.0), train_steps=1).train_set(), "smaller than the training crop")


def test_training_without_training_images_says_how_to_fix(image_folder):
    cfg = data_cfg("folder", root=str(image_folder))
    _one_line_error(lambda: DenoisingDataModule(cfg, NoiseSpec(25.0), train_steps=1).train_set(), "data.train_root")
