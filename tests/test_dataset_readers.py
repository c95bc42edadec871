"""Readers for the papers' datasets, on tiny trees in each official layout (plus the local CelebA subset)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.io
from omegaconf import OmegaConf
from PIL import Image

from denoise_bench.data.items import ImageRef, read_image
from denoise_bench.data.sources import list_items
from denoise_bench.errors import DataError

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
CELEBA_SUBSET = SHARED_DATA / "CelebA_subset"


# -- helpers ---------------------------------------------------------------------------------------
def write_image(path: Path, h: int = 20, w: int = 24, seed: int = 0, gray: bool = False) -> np.ndarray:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 256, size=(h, w) if gray else (h, w, 3), dtype=np.uint8)
    Image.fromarray(arr).save(path)
    return arr


def cfg(name: str, **over):
    c = OmegaConf.load(REPO / "conf" / "data" / f"{name}.yaml")
    c.limit = {"train": None, "val": None, "test": None}
    for k, v in over.items():
        c[k] = v
    return c


def ids(c, split: str) -> list[str]:
    return [it.id for it in list_items(c, split)]


def data_error(c, split: str, *fragments) -> str:
    """The DataError message of list_items(c, split); asserts it is one line naming every fragment."""
    with pytest.raises(DataError) as info:
        list_items(c, split)
    msg = str(info.value)
    assert "\n" not in msg
    for f in fragments:
        assert str(f) in msg, msg
    return msg


# -- celeba ----------------------------------------------------------------------------------------
def make_celeba(root: Path, parts=(0, 0, 0, 1, 1, 2, 2), h: int = 36, w: int = 30) -> Path:
    lines = []
    for k, p in enumerate(parts, 1):
        name = f"{k:06d}.jpg"
        write_image(root / "img_align_celeba" / name, h, w, seed=k)
        lines.append(f"{name} {p}")
    (root / "list_eval_partition.txt").write_text("\n".join(lines) + "\n")
    return root


def test_celeba_splits_ids_and_shapes(tmp_path):
    root = make_celeba(tmp_path / "celeba")
    c = cfg("celeba", root=str(root))
    assert ids(c, "train") == ["celeba/000001", "celeba/000002", "celeba/000003"]
    assert ids(c, "val") == ["celeba/000004", "celeba/000005"]
    assert ids(c, "test") == ["celeba/000006", "celeba/000007"]
    item = list_items(c, "test")[0]
    assert item.noisy is None
    assert read_image(item.clean, 3).shape == (36, 30, 3)
    c.partitions.test = [1, 2]  # e.g. FDN's test on the official validation partition
    assert len(ids(c, "test")) == 4
    c.test = {"limit": 1, "from_end": True}
    assert ids(c, "test") == ["celeba/000007"]


def test_celeba_kaggle_layout(tmp_path):
    root = tmp_path / "kaggle"
    for k in (1, 2):
        write_image(root / "img_align_celeba" / "img_align_celeba" / f"{k:06d}.jpg", seed=k)
    (root / "list_eval_partition.csv").write_text("image_id,partition\n000001.jpg,0\n000002.jpg,2\n")
    c = cfg("celeba", root=str(root))
    assert ids(c, "train") == ["celeba/000001"] and ids(c, "test") == ["celeba/000002"]


def test_celeba_bad_input(tmp_path):
    data_error(cfg("celeba"), "train", "data.root", "list_eval_partition.txt")
    data_error(cfg("celeba", root=str(tmp_path / "nope")), "train", tmp_path / "nope", "img_align_celeba")
    root = make_celeba(tmp_path / "c", parts=(0, 2))
    (root / "list_eval_partition.txt").unlink()
    data_error(cfg("celeba", root=str(root)), "train", root / "list_eval_partition.txt", "0 train")
    (root / "list_eval_partition.txt").write_text("000001.jpg 0\n000002.jpg 2\n000003.jpg 1\n")
    data_error(cfg("celeba", root=str(root)), "train", root / "img_align_celeba" / "000003.jpg", "list_eval_partition.txt")
    (root / "list_eval_partition.txt").write_text("000001.jpg\n")
    data_error(cfg("celeba", root=str(root)), "train", f"{root / 'list_eval_partition.txt'}:1", "malformed")
    (root / "list_eval_partition.txt").write_text("\n")
    data_error(cfg("celeba", root=str(root)), "train", root / "list_eval_partition.txt", "empty")
    empty = tmp_path / "e"
    (empty / "img_align_celeba").mkdir(parents=True)
    (empty / "list_eval_partition.txt").write_text("000001.jpg 0\n")
    data_error(cfg("celeba", root=str(empty)), "train", empty / "img_align_celeba", "empty")


@pytest.mark.skipif(not (CELEBA_SUBSET / "list_eval_partition.txt").is_file(), reason="../shared/data/CelebA_subset absent")
def test_celeba_local_subset_split_sizes():
    c = cfg("celeba", root=str(CELEBA_SUBSET))
    sizes = {s: len(list_items(c, s)) for s in ("train", "val", "test")}
    assert sizes == {"train": 9000, "val": 500, "test": 500}
    assert read_image(list_items(c, "test")[0].clean, 3).shape == (109, 89, 3)


# -- flowers102 ------------------------------------------------------------------------------------
def make_flowers(root: Path, n: int = 10, trnid=(1, 2), valid=(3, 4), tstid=(5, 6, 7, 8, 9, 10)) -> Path:
    for k in range(1, n + 1):
        write_image(root / "jpg" / f"image_{k:05d}.jpg", seed=k)
    scipy.io.savemat(root / "setid.mat", {"trnid": np.array([trnid], dtype=np.uint16),
                                          "valid": np.array([valid], dtype=np.uint16),
                                          "tstid": np.array([tstid], dtype=np.uint16)})
    scipy.io.savemat(root / "imagelabels.mat", {"labels": np.ones((1, n), dtype=np.uint8)})
    return root


def test_flowers102_swapped_split(tmp_path):
    root = make_flowers(tmp_path / "flowers")
    c = cfg("flowers102", root=str(root), val_count=2)
    # val: positions floor(k*6/2) = 0, 3 of the sorted tstid numbers 5..10
    assert ids(c, "val") == ["flowers102/image_00005", "flowers102/image_00008"]
    assert ids(c, "train") == [f"flowers102/image_{k:05d}" for k in (6, 7, 9, 10)]
    assert ids(c, "test") == [f"flowers102/image_{k:05d}" for k in (1, 2, 3, 4)]
    c.val_count = 0
    assert len(ids(c, "train")) == 6 and ids(c, "val") == []
    assert read_image(list_items(c, "test")[0].clean).shape == (20, 24, 3)


def test_flowers102_bad_input(tmp_path):
    data_error(cfg("flowers102", root=str(tmp_path / "none")), "train", tmp_path / "none", "setid.mat")
    root = make_flowers(tmp_path / "f")
    (root / "setid.mat").unlink()
    data_error(cfg("flowers102", root=str(root)), "train", root / "setid.mat", "trnid")
    scipy.io.savemat(root / "setid.mat", {"trnid": np.array([[1]]), "valid": np.array([[2]])})
    data_error(cfg("flowers102", root=str(root)), "train", root / "setid.mat", "'tstid'")
    make_flowers(root, tstid=(5, 6, 11))
    data_error(cfg("flowers102", root=str(root), val_count=0), "train", root / "jpg" / "image_00011.jpg", "setid.mat")
    make_flowers(root, trnid=(0, 1))
    data_error(cfg("flowers102", root=str(root)), "test", root / "setid.mat", "1-based")


# -- cub200 ----------------------------------------------------------------------------------------
def make_cub(parent: Path, flags=(1, 1, 1, 0, 0), small_id: int | None = None) -> Path:
    base = parent / "CUB_200_2011"
    rels = []
    for k, _ in enumerate(flags, 1):
        cls = "001.Black_footed_Albatross" if k <= 3 else "002.Laysan_Albatross"
        rel = f"{cls}/Bird_{k:04d}_{100 + k}.jpg"
        size = (16, 40) if k == small_id else (40, 44)
        write_image(base / "images" / rel, *size, seed=k, gray=(k == 5))
        rels.append(rel)
    (base / "images.txt").write_text("".join(f"{k} {r}\n" for k, r in enumerate(rels, 1)))
    (base / "train_test_split.txt").write_text("".join(f"{k} {f}\n" for k, f in enumerate(flags, 1)))
    return base


def test_cub200_official_split_both_roots(tmp_path):
    base = make_cub(tmp_path / "birds")
    for root in (tmp_path / "birds", base):
        c = cfg("cub200", root=str(root), val_count=0, patch_size=32)
        assert ids(c, "train") == [f"cub200/001.Black_footed_Albatross/Bird_{k:04d}_{100 + k}" for k in (1, 2, 3)]
        assert len(ids(c, "test")) == 2 and ids(c, "val") == []
    c = cfg("cub200", root=str(base), val_count=1, patch_size=32)
    assert ids(c, "val") == ["cub200/001.Black_footed_Albatross/Bird_0001_101"] and len(ids(c, "train")) == 2
    gray = list_items(c, "test")[-1]
    assert read_image(gray.clean, c.channels).shape == (40, 44, 3)


def test_cub200_skips_training_images_smaller_than_the_crop(tmp_path):
    make_cub(tmp_path, small_id=2)
    c = cfg("cub200", root=str(tmp_path), val_count=0, patch_size=32)
    assert [i.split("_")[-1] for i in ids(c, "train")] == ["101", "103"]
    c.skip_small_train = False
    assert len(ids(c, "train")) == 3
    c.skip_small_train, c.patch_size = True, 64
    data_error(c, "train", tmp_path / "CUB_200_2011" / "images", "smaller than the training crop 64")


def test_cub200_bad_input(tmp_path):
    data_error(cfg("cub200", root=str(tmp_path)), "train", tmp_path / "CUB_200_2011", "images.txt")
    base = make_cub(tmp_path / "a")
    (base / "train_test_split.txt").unlink()
    data_error(cfg("cub200", root=str(base)), "train", base / "train_test_split.txt", "1 train|0 test")
    base = make_cub(tmp_path / "b")
    (base / "images.txt").unlink()
    data_error(cfg("cub200", root=str(base)), "train", base / "images.txt", "CUB_200_2011")
    base = make_cub(tmp_path / "c")
    missing = base / "images" / "002.Laysan_Albatross" / "Bird_0004_104.jpg"
    missing.unlink()
    data_error(cfg("cub200", root=str(base)), "test", missing, "images.txt")


# -- rice1 / rice2 ---------------------------------------------------------------------------------
def make_rice(parent: Path, name: str, n: int = 20) -> Path:
    top, sub = ("RICE1", ("cloud", "label")) if name == "rice1" else ("RICE2", ("cloudy_image", "label", "mask"))
    for k in range(n):
        for s in sub:
            write_image(parent / top / s / f"{k}.png", 16, 16, seed=k)
    return parent / top


@pytest.mark.parametrize("name", ["rice1", "rice2"])
def test_rice_numeric_split(tmp_path, name):
    folder = make_rice(tmp_path, name)
    for root in (tmp_path, folder):
        c = cfg(name, root=str(root))
        train, val, test = ids(c, "train"), ids(c, "val"), ids(c, "test")
        assert (len(train), len(val), len(test)) == (15, 1, 4)  # 20 images: 20% test, 5% val
        assert train[:3] == [f"{name}/0", f"{name}/1", f"{name}/2"] and train[-1] == f"{name}/14"
        assert val == [f"{name}/15"] and test == [f"{name}/{k}" for k in (16, 17, 18, 19)]  # numeric, not text order
    item = list_items(c, "test")[0]
    assert "label" in Path(item.clean.path).parts and item.noisy is None
    assert read_image(item.clean).shape == (16, 16, 3)


def test_rice_split_counts_of_the_releases():
    from denoise_bench.data.sources.rice import split_counts

    assert split_counts(500, 0.05, 0.2) == (375, 25, 100)
    assert split_counts(736, 0.05, 0.2) == (552, 37, 147)


def test_rice_bad_input(tmp_path):
    data_error(cfg("rice1", root=str(tmp_path / "x")), "train", tmp_path / "x", "RICE1/{cloud,label}")
    data_error(cfg("rice1", root=str(tmp_path)), "train", tmp_path / "label", "RICE1")
    make_rice(tmp_path, "rice2", n=2)
    data_error(cfg("rice1", root=str(tmp_path / "RICE2")), "train", tmp_path / "RICE2", "rice2")
    (tmp_path / "e" / "RICE2" / "label").mkdir(parents=True)
    data_error(cfg("rice2", root=str(tmp_path / "e")), "test", tmp_path / "e" / "RICE2" / "label", "no image files")


# -- sidd ------------------------------------------------------------------------------------------
def make_sidd(root: Path, blocks=(2, 3), size: int = 8, scenes=("0001_001_S6_00100_00060_3200_L", "0002_001_S6_00100_00020_3200_N")):
    for s, scene in enumerate(scenes):
        prefix = scene[:4] + "_" if s == 0 else ""  # official NNNN_ prefix, and SIDD-Small style without
        for num in ("010", "011"):
            write_image(root / "Data" / scene / f"{prefix}GT_SRGB_{num}.PNG", 24, 28, seed=s)
            write_image(root / "Data" / scene / f"{prefix}NOISY_SRGB_{num}.PNG", 24, 28, seed=s + 10)
    rng = np.random.default_rng(0)
    gt = rng.integers(0, 256, size=(*blocks, size, size, 3), dtype=np.uint8)
    noisy = rng.integers(0, 256, size=gt.shape, dtype=np.uint8)
    scipy.io.savemat(root / "ValidationGtBlocksSrgb.mat", {"ValidationGtBlocksSrgb": gt})
    scipy.io.savemat(root / "ValidationNoisyBlocksSrgb.mat", {"ValidationNoisyBlocksSrgb": noisy})
    return gt, noisy


def test_sidd_training_pairs_and_validation_blocks(tmp_path):
    gt, noisy = make_sidd(tmp_path)
    c = cfg("sidd", root=str(tmp_path))
    train = list_items(c, "train")
    assert [i.id for i in train] == ["sidd/0001_001_S6_00100_00060_3200_L/010", "sidd/0001_001_S6_00100_00060_3200_L/011",
                                     "sidd/0002_001_S6_00100_00020_3200_N/010", "sidd/0002_001_S6_00100_00020_3200_N/011"]
    assert all("GT_SRGB" in i.clean.path and "NOISY_SRGB" in i.noisy.path for i in train)
    test = list_items(c, "test")
    assert len(test) == 6 and test[4].id == "sidd/val_001_01"
    assert test[4].clean == ImageRef(str(tmp_path / "ValidationGtBlocksSrgb.mat"), "ValidationGtBlocksSrgb", (1, 1))
    assert test[4].noisy == ImageRef(str(tmp_path / "ValidationNoisyBlocksSrgb.mat"), "ValidationNoisyBlocksSrgb", (1, 1))
    np.testing.assert_allclose(read_image(test[4].clean), gt[1, 1] / 255.0, atol=1e-6)
    np.testing.assert_allclose(read_image(test[4].noisy), noisy[1, 1] / 255.0, atol=1e-6)
    assert ids(c, "val") == ["sidd/val_000_00", "sidd/val_001_00"]
    c.paired = False  # AWGN on the GT images instead of the real noise
    assert all(i.noisy is None for i in list_items(c, "test") + list_items(c, "train"))


def test_sidd_falls_back_to_a_paired_test_folder(tmp_path):
    make_sidd(tmp_path / "sidd")
    for f in ("ValidationGtBlocksSrgb.mat", "ValidationNoisyBlocksSrgb.mat"):
        (tmp_path / "sidd" / f).unlink()
    c = cfg("sidd", root=str(tmp_path / "sidd"))
    data_error(c, "test", tmp_path / "sidd" / "ValidationGtBlocksSrgb.mat", "data.test_root")
    assert ids(c, "val") == []
    for k in (1, 2):
        write_image(tmp_path / "pairs" / "GT" / f"GT_{k}.png", seed=k)
        write_image(tmp_path / "pairs" / "NOISY" / f"NOISY_{k}.png", seed=k + 5)
    c.test_root = str(tmp_path / "pairs")
    test = list_items(c, "test")
    assert [i.id for i in test] == ["pairs/1", "pairs/2"] and test[0].noisy.path.endswith("NOISY_1.png")


def test_sidd_bad_input(tmp_path):
    data_error(cfg("sidd", root=str(tmp_path / "none")), "test", tmp_path / "none", "ValidationGtBlocksSrgb")
    make_sidd(tmp_path)
    scipy.io.savemat(tmp_path / "ValidationGtBlocksSrgb.mat", {"something_else": np.zeros((1, 1, 2, 2, 3), np.uint8)})
    data_error(cfg("sidd", root=str(tmp_path)), "test", tmp_path / "ValidationGtBlocksSrgb.mat", "'ValidationGtBlocksSrgb'", "something_else")
    (tmp_path / "ValidationNoisyBlocksSrgb.mat").unlink()
    data_error(cfg("sidd", root=str(tmp_path)), "test", tmp_path / "ValidationNoisyBlocksSrgb.mat", "not found")
    scene = tmp_path / "Data" / "0001_001_S6_00100_00060_3200_L"
    (scene / "0001_NOISY_SRGB_011.PNG").unlink()
    data_error(cfg("sidd", root=str(tmp_path)), "train", tmp_path / "Data", "0001_GT_SRGB_011.PNG")
    data_error(cfg("sidd", root=str(tmp_path / "Data" / scene.name)), "train", scene / "Data", "<scene>")


# -- paired_folder ---------------------------------------------------------------------------------
def make_pairs(root: Path, keys=(1, 2, 10), clean="GT", noisy="NOISY", prefixed=True):
    out = {}
    for k in keys:
        c = write_image(root / clean / (f"{clean}_{k}.png" if prefixed else f"{k}.png"), 12, 16, seed=k)
        n = write_image(root / noisy / (f"{noisy}_{k}.png" if prefixed else f"{k}.png"), 12, 16, seed=100 + k)
        out[k] = (c, n)
    return out


def test_paired_folder_prefixed_and_identical_names(tmp_path):
    make_pairs(tmp_path / "pfx")
    c = cfg("paired_folder", root=str(tmp_path / "pfx"))
    items = list_items(c, "test")
    assert [i.id for i in items] == ["pfx/1", "pfx/2", "pfx/10"]  # natural order
    assert items[2].clean.path.endswith("GT_10.png") and items[2].noisy.path.endswith("NOISY_10.png")
    make_pairs(tmp_path / "same", keys=(3, 4), clean="clean", noisy="noisy", prefixed=False)
    c = cfg("paired_folder", root=str(tmp_path / "same"), clean_dir="clean", noisy_dir="noisy")
    assert [Path(i.noisy.path).name for i in list_items(c, "test")] == ["3.png", "4.png"]
    assert ids(c, "val") == []
    c.train_root = str(tmp_path / "same")
    assert len(ids(c, "train")) == 2
    c.paired = False
    assert all(i.noisy is None for i in list_items(c, "test"))


def test_paired_folder_bad_input(tmp_path):
    data_error(cfg("paired_folder", root=str(tmp_path / "none")), "test", tmp_path / "none", "GT/")
    make_pairs(tmp_path / "p")
    (tmp_path / "p" / "NOISY" / "NOISY_2.png").unlink()
    write_image(tmp_path / "p" / "NOISY" / "extra.png")
    data_error(cfg("paired_folder", root=str(tmp_path / "p")), "test", tmp_path / "p", "GT/GT_2.png", "NOISY/extra.png", "unpaired")
    (tmp_path / "q" / "GT").mkdir(parents=True)
    (tmp_path / "q" / "NOISY").mkdir()
    data_error(cfg("paired_folder", root=str(tmp_path / "q")), "test", tmp_path / "q" / "GT", "no image files")
    (tmp_path / "q" / "GT").rmdir()
    data_error(cfg("paired_folder", root=str(tmp_path / "q")), "test", tmp_path / "q" / "GT", "not found")
    data_error(cfg("paired_folder", root=str(tmp_path / "p")), "train", "data.train_root")


# -- through the DataModule ------------------------------------------------------------------------
def test_datamodule_uses_the_on_disk_noisy_images(tmp_path):
    from denoise_bench.data.datamodule import DenoisingDataModule
    from denoise_bench.data.noise import NoiseSpec

    pairs = make_pairs(tmp_path / "pairs", keys=(1, 2, 3))
    dm = DenoisingDataModule(cfg("paired_folder", root=str(tmp_path / "pairs")), NoiseSpec(sigma="real"))
    batches = list(dm.test_dataloader())
    assert sum(len(b["id"]) for b in batches) == 3
    for b in batches:
        for k, image_id in enumerate(b["id"]):
            clean, noisy = pairs[int(image_id.split("/")[-1])]
            np.testing.assert_allclose(b["noisy"][k].permute(1, 2, 0).numpy(), noisy / 255.0, atol=1e-6)
            np.testing.assert_allclose(b["clean"][k].permute(1, 2, 0).numpy(), clean / 255.0, atol=1e-6)
            assert np.isnan(b["sigma"][k].item())


def test_datamodule_celeba_training_crops_and_test_crop(tmp_path):
    from denoise_bench.data.datamodule import DenoisingDataModule
    from denoise_bench.data.noise import NoiseSpec

    root = make_celeba(tmp_path / "celeba", h=80, w=70)
    c = cfg("celeba", root=str(root), batch_size=2)
    dm = DenoisingDataModule(c, NoiseSpec(sigma=25.0), train_steps=1)
    batch = next(iter(dm.train_dataloader()))
    assert batch["noisy"].shape == batch["clean"].shape == (2, 3, c.patch_size, c.patch_size) == (2, 3, 64, 64)
    assert torch_close(batch["sigma"], 25.0)
    test = next(iter(dm.test_dataloader()))
    assert test["clean"].shape[1:] == (3, 64, 64)  # the centre crop data.test.crop


def torch_close(t, value: float) -> bool:
    return bool((t - value).abs().max() < 1e-6)


def test_datamodule_sidd_blocks_and_paired_training_crops(tmp_path):
    from denoise_bench.data.datamodule import DenoisingDataModule
    from denoise_bench.data.noise import NoiseSpec

    gt, noisy = make_sidd(tmp_path)
    c = cfg("sidd", root=str(tmp_path), patch_size=16, batch_size=2)
    dm = DenoisingDataModule(c, NoiseSpec(sigma="real"), train_steps=1)
    test = next(iter(dm.test_dataloader()))
    assert test["id"][:2] == ["sidd/val_000_00", "sidd/val_000_01"]
    np.testing.assert_allclose(test["noisy"][1].permute(1, 2, 0).numpy(), noisy[0, 1] / 255.0, atol=1e-6)
    np.testing.assert_allclose(test["clean"][1].permute(1, 2, 0).numpy(), gt[0, 1] / 255.0, atol=1e-6)
    batch = next(iter(dm.train_dataloader()))
    assert batch["noisy"].shape == batch["clean"].shape == (2, 3, 16, 16)
    assert bool(batch["sigma"].isnan().all())  # real noise: no synthetic sigma
