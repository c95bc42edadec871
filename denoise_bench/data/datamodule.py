"""The LightningDataModule shared by every method.

- training: sample ``i`` of a training is a pure function of (seed, rank, i): an image drawn
  uniformly from the whole training split, a random crop (albumentations: crop, optional flips /
  rot90 per dataset) and fresh noise. A training resumed at step N continues with sample
  N x batch, so it sees exactly what an uninterrupted one sees. ``unpaired=True`` drops the clean
  image from the batch, so a method trained that way can never see a clean target;
- validation / test: full images (or a fixed centre crop / resize), the noisy image seeded per
  (seed, image id, sigma) so every method sees the same input; batches group images of one size.
"""
from __future__ import annotations

import math
import random
from collections import defaultdict

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from denoise_bench.data.items import ImageItem, check_eval_memory, image_size, read_image
from denoise_bench.data.noise import NoiseSpec, apply_awgn, seeded_noisy
from denoise_bench.data.sources import list_items
from denoise_bench.errors import ConfigError, DataError


def _to_tensor(img: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1))).float()


def center_crop(img: np.ndarray, size: int, where: str) -> np.ndarray:
    h, w = img.shape[:2]
    if h < size or w < size:
        raise DataError(f"{where}: image is {h}x{w}, smaller than the crop {size}x{size} (data.test.crop)")
    top, left = (h - size) // 2, (w - size) // 2
    return img[top : top + size, left : left + size]


def resize(img: np.ndarray, size: int) -> np.ndarray:
    import cv2

    out = cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)
    return out[:, :, None] if out.ndim == 2 else out


class EvalImages(Dataset):
    """Validation / test images with their seeded noisy versions, decoded once and kept in memory."""

    def __init__(self, items: list[ImageItem], channels: int | None, spec: NoiseSpec, crop=None, size=None,
                 bit_depth=None):
        self.samples = []
        for item in items:
            clean = read_image(item.clean, channels, bit_depth)
            noisy = read_image(item.noisy, channels, bit_depth) if item.noisy is not None else None
            if noisy is not None and noisy.shape != clean.shape:
                raise DataError(f"{item.noisy.path}: noisy image {noisy.shape} does not match clean {clean.shape}")
            if crop:
                clean = center_crop(clean, int(crop), item.clean.path)
                noisy = center_crop(noisy, int(crop), item.noisy.path) if noisy is not None else None
            if size:
                clean = resize(clean, int(size))
                noisy = resize(noisy, int(size)) if noisy is not None else None
            clean_t = _to_tensor(clean)
            if noisy is not None:  # real noise: the noisy image comes from the dataset
                noisy_t, sigma = _to_tensor(noisy), float("nan")
            else:
                noisy_t, sigma = seeded_noisy(clean_t, item.id, spec)
            self.samples.append({"id": item.id, "clean": clean_t, "noisy": noisy_t, "sigma": torch.tensor(sigma)})

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> dict:
        return self.samples[i]

    def shape(self, i: int) -> tuple:
        return tuple(self.samples[i]["clean"].shape)


class SameShapeBatches(Sampler):
    """Batches of up to ``batch_size`` images that share one shape, in dataset order."""

    def __init__(self, dataset: EvalImages, batch_size: int):
        groups: dict[tuple, list[int]] = defaultdict(list)
        for i in range(len(dataset)):
            groups[dataset.shape(i)].append(i)
        self.batches = [idx[k : k + batch_size] for idx in groups.values() for k in range(0, len(idx), batch_size)]
        self.batches.sort(key=lambda b: b[0])

    def mine(self) -> list[list[int]]:
        """Under DDP: this rank's contiguous block of batches, padded with repeats of its last one so
        every rank runs the same number of steps; gathering the rows in rank order and dropping
        repeated image ids (``DenoisingMethod.on_test_epoch_end``) gives each image once, in order."""
        import torch.distributed as dist

        if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
            return self.batches
        world, rank = dist.get_world_size(), dist.get_rank()
        per = math.ceil(len(self.batches) / world)
        block = self.batches[rank * per : (rank + 1) * per]
        return block + [(block or self.batches)[-1]] * (per - len(block))

    def __iter__(self):
        return iter(self.mine())

    def __len__(self) -> int:
        return len(self.mine())


class ResumedRange(Sampler):
    """Indices ``start .. n-1`` of a training of ``n`` samples, with the length of the whole training:
    Lightning restores its batch counter at the resumed step and counts the remaining batches on
    from there, so the loader must report the full length while yielding only the rest."""

    def __init__(self, start: int, n: int):
        self.start, self.n = int(start), int(n)

    def __iter__(self):
        return iter(range(self.start, self.n))

    def __len__(self) -> int:
        return self.n


def collate(samples: list[dict]) -> dict:
    out = {k: torch.stack([s[k] for s in samples]) for k in samples[0] if k != "id"}
    out["id"] = [s["id"] for s in samples]
    return out


class TrainPatches(Dataset):
    """Random training crops with augmentation; noise is drawn fresh at every access."""

    def __init__(self, items, channels, spec: NoiseSpec, patch: int, flips: bool, rot90: bool,
                 length: int, unpaired: bool = False, cache_max: int = 2000,
                 pre_crop: int | None = None, pre_size: int | None = None, seed: int = 0, bit_depth=None):
        import albumentations as A

        if not items:
            raise DataError("the training split is empty")
        self.items, self.channels, self.spec, self.patch = items, channels, spec, int(patch)
        self.length, self.unpaired = int(length), unpaired
        self.seed, self.rank, self.bit_depth = int(seed), 0, bit_depth
        # aligned datasets (faces for a density prior): centre crop / resize first, as at test time
        self.pre_crop, self.pre_size = pre_crop, pre_size
        self.cache: dict[int, tuple] | None = {} if len(items) <= cache_max else None
        ops = [A.RandomCrop(self.patch, self.patch)]
        if flips:
            ops += [A.HorizontalFlip(p=0.5)]
        if rot90:
            ops += [A.RandomRotate90(p=1.0)]
        self.transform = A.Compose(ops, additional_targets={"noisy": "image"})

    def __len__(self) -> int:
        return self.length

    def _load(self, k: int):
        if self.cache is not None and k in self.cache:
            return self.cache[k]
        item = self.items[k]
        clean = read_image(item.clean, self.channels, self.bit_depth)
        noisy = read_image(item.noisy, self.channels, self.bit_depth) if item.noisy is not None else None
        if self.pre_crop:
            clean = center_crop(clean, int(self.pre_crop), item.clean.path)
            noisy = center_crop(noisy, int(self.pre_crop), item.noisy.path) if noisy is not None else None
        if self.pre_size:
            clean = resize(clean, int(self.pre_size))
            noisy = resize(noisy, int(self.pre_size)) if noisy is not None else None
        h, w = clean.shape[:2]
        if h < self.patch or w < self.patch:
            raise DataError(f"{item.clean.path}: image is {h}x{w}, smaller than the training crop {self.patch} (data.patch_size)")
        if self.cache is not None:
            self.cache[k] = (clean, noisy)
        return clean, noisy

    def generator(self, i: int) -> torch.Generator:
        """The random source of sample ``i``: a function of (seed, rank, i) only."""
        return torch.Generator().manual_seed(hash((self.seed, self.rank, int(i))) & (2**62 - 1))

    def __getitem__(self, i: int) -> dict:
        g = self.generator(i)
        clean, noisy = self._load(int(torch.randint(0, len(self.items), (), generator=g)))  # uniform over the split
        s = int(torch.randint(0, 2**62, (), generator=g))  # albumentations keeps its own RNG: seed it from ours
        self.transform.set_random_state(np.random.default_rng(s), random.Random(s))
        if noisy is not None:
            out = self.transform(image=clean, noisy=noisy)
            clean_t, noisy_t = _to_tensor(out["image"]), _to_tensor(out["noisy"])
            sigma = torch.tensor(float("nan"))
        else:
            clean_t = _to_tensor(self.transform(image=clean)["image"])
            s = (torch.rand((), generator=g) * self.spec.blind_max if self.spec.is_blind
                 else torch.tensor(float(self.spec.sigma)))
            eps = torch.randn(clean_t.shape, generator=g)
            noisy_t = apply_awgn(clean_t, s, eps, self.spec.clip, self.spec.quantize)
            sigma = s.float()
        sample = {"noisy": noisy_t, "sigma": sigma}
        if not self.unpaired:
            sample["clean"] = clean_t
        return sample


class DenoisingDataModule(L.LightningDataModule):
    """Train / val / test loaders for one dataset config and one noise spec."""

    def __init__(self, data_cfg, spec: NoiseSpec, train_steps: int = 0, unpaired: bool = False,
                 train_spec: NoiseSpec | None = None, seed: int = 0):
        super().__init__()
        self.cfg, self.spec, self.seed = data_cfg, spec, int(seed)
        self.test_cfg = data_cfg.get("test") or {}
        self.run_cfg = data_cfg.get("run") or {}
        self.train_spec = train_spec or spec  # e.g. a blind model (DnCNN-B) tested at one sigma
        self.train_steps, self.unpaired = int(train_steps), unpaired
        self.channels = data_cfg.get("channels")
        self._test = self._val = self._train = None

    # -- splits ---------------------------------------------------------------------------------
    def items(self, split: str) -> list[ImageItem]:
        return list_items(self.cfg, split)

    def _eval_images(self, split: str) -> EvalImages:
        items = self.items(split)
        if not items and split == self.test_split:
            raise DataError(f"data={self.cfg.get('name')}: the {split} split has no images")
        if self.channels is None and items:  # as stored: decided by the first image
            self.channels = read_image(items[0].clean, None, self.cfg.get("bit_depth")).shape[2]
        crop, size = self.test_cfg.get("crop"), self.test_cfg.get("size")
        check_eval_memory(items, self.channels, crop, size)
        return EvalImages(items, self.channels, self.spec, crop, size, self.cfg.get("bit_depth"))

    @property
    def test_split(self) -> str:
        """``+data.test.split=val``: the cell evaluates the validation images (choose a setting there,
        then report it once on the test images); absent: ``test``. Not written in the data configs, so
        adding it changed no other cell's identity (``identity.cell_key`` hashes every key)."""
        split = str(self.test_cfg.get("split") or "test")
        if split not in ("test", "val"):
            raise ConfigError(f"data.test.split={split!r}: expected 'test' or 'val'")
        return split

    def test_set(self) -> EvalImages:
        if self._test is None:
            self._test = self._eval_images(self.test_split)
        return self._test

    def val_set(self) -> EvalImages:
        if self._val is None:  # validation sees the training noise (a blind model: blind val noise)
            spec, self.spec = self.spec, self.train_spec
            try:
                self._val = self._eval_images("val")
            finally:
                self.spec = spec
        return self._val

    def train_set(self) -> TrainPatches:
        if self._train is None:
            items = self.items("train")
            if self.channels is None and items:
                self.channels = read_image(items[0].clean, None, self.cfg.get("bit_depth")).shape[2]
            patch = int(self.cfg.patch_size)
            pre_crop, pre_size = self.cfg.get("train_center_crop"), self.cfg.get("train_size")
            for item in ([] if pre_crop or pre_size else items[:32]):  # cheap early check; every image is checked when drawn
                h, w = image_size(item.clean)
                if h < patch or w < patch:
                    raise DataError(f"{item.clean.path}: image is {h}x{w}, smaller than the training crop {patch} (data.patch_size)")
            spec = self.train_spec
            if spec.is_real and not any(i.noisy for i in items[:1]):
                raise DataError("sigma=real needs a paired training set (noisy images on disk)")
            length = max(self.train_steps, 1) * int(self.cfg.batch_size)
            self._train = TrainPatches(items, self.channels, spec, patch, bool(self.cfg.get("flips", False)),
                                       bool(self.cfg.get("rot90", False)), length, self.unpaired,
                                       int(self.run_cfg.get("cache_max_images", 2000)), pre_crop, pre_size,
                                       seed=self.seed, bit_depth=self.cfg.get("bit_depth"))
        return self._train

    # -- loaders --------------------------------------------------------------------------------
    def _loader_kwargs(self) -> dict:
        n = int(self.run_cfg.get("num_workers", 0))
        return {"num_workers": n, "persistent_workers": n > 0}

    def train_dataloader(self):
        """Samples from N x batch on, where N is the trainer's step (0, or the step a training resumes at)."""
        ds = self.train_set()
        trainer = getattr(self, "trainer", None)
        ds.rank = int(trainer.global_rank) if trainer is not None else 0
        start = int(trainer.global_step) * int(self.cfg.batch_size) if trainer is not None else 0
        return DataLoader(ds, batch_size=int(self.cfg.batch_size), sampler=ResumedRange(start, len(ds)),
                          drop_last=True, **self._loader_kwargs())

    def val_dataloader(self):
        ds = self.val_set()
        return DataLoader(ds, batch_sampler=SameShapeBatches(ds, int(self.test_cfg.get("batch_size") or 1)),
                          collate_fn=collate)

    def test_dataloader(self):
        ds = self.test_set()
        return DataLoader(ds, batch_sampler=SameShapeBatches(ds, int(self.test_cfg.get("batch_size") or 1)),
                          collate_fn=collate)

    def describe(self) -> str:
        crop = self.test_cfg.get("crop")
        size = self.test_cfg.get("size")
        how = "full images" + (f", centre crop {crop}" if crop else "") + (f", resized to {size}" if size else "")
        return f"{self.cfg.get('name')} {self.test_split} split ({how})"
