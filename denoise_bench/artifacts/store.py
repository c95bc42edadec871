"""Store of trained models, keyed by a hash of exactly the config that determines them.

A sweep trains each shared model once: a DnCNN per training sigma, a Glow prior per dataset, an
FDN per sigma... The key (``config_key``) is the SHA-256 of the canonical JSON of the key config
that ``training.TrainingContext.fit_or_load`` assembles (``identity.training_identity``): method architecture / optimiser / steps
(the model part of the method or prior group), the training data
(the model part of the data group: no ``test:`` / ``run:`` sections), the training noise, the
seed and the trainer settings that change the weights (precision, clipping, world size). Metric
switches, loggers and paths are not in it, so every cell that needs the same model finds it here.

Layout: ``<root>/<kind>-<key>/{model.pt, meta.json}``; ``meta.json`` holds the full key config
and the SHA-256 of ``model.pt``. A model is written into a hidden staging folder and renamed into
place in one step, so a reader never sees a half-written artifact, and the checksum is verified on
every load: a truncated or corrupted file is moved aside (``*.corrupt-<time>``) and retrained,
never used. Cells that need the same artifact serialise on a file lock (``.<kind>-<key>.lock``):
the first trains, the others wait and load.

Command line (``artifacts/__main__.py``): ``python -m denoise_bench.artifacts list|clear [--kind K] [--root DIR]``.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

from denoise_bench.atomic import _fsync_dir, atomic_write_bytes, atomic_write_text, sha256_file
from denoise_bench.identity import canonical, config_key


class CorruptArtifact(Exception):
    """model.pt / meta.json unreadable, truncated or not matching its checksum or key."""


class ArtifactStore:
    """Trained state dicts under ``root``; ``enabled=False`` (``reuse_artifacts=false``) never reads or writes."""

    def __init__(self, root: str | Path, enabled: bool = True):
        self.root = Path(root).expanduser()
        self.enabled = enabled

    def dir_for(self, kind: str, config: dict) -> Path:
        return self.root / f"{kind}-{config_key(config)}"

    def partial_dir(self, kind: str, config: dict) -> Path:
        """Where a training of this artifact keeps its resumable checkpoint and curve until it is stored."""
        return self.root / f".partial-{kind}-{config_key(config)}"

    def lock_path(self, kind: str, config: dict) -> Path:
        return self.root / f".{kind}-{config_key(config)}.lock"

    @contextmanager
    def lock(self, kind: str, config: dict, quiet: bool = False):
        """Exclusive per-artifact lock (fcntl/flock: released by the OS if the holder dies)."""
        self.root.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(self.lock_path(kind, config)))
        try:
            lock.acquire(timeout=0)
        except Timeout:
            if not quiet:
                print(f"[artifacts] {kind}: waiting for another process that holds "
                      f"{self.dir_for(kind, config).name} (training it)", flush=True)
            lock.acquire()
        try:
            yield
        finally:
            lock.release()

    # -- reading --------------------------------------------------------------------------------
    def verify(self, d: Path, config: dict | None = None) -> dict:
        """The meta of a complete, intact artifact folder; raises ``CorruptArtifact`` otherwise."""
        meta_path, model_path = d / "meta.json", d / "model.pt"
        try:
            meta = json.loads(meta_path.read_text())
        except (OSError, ValueError) as e:
            raise CorruptArtifact(f"meta.json unreadable ({type(e).__name__})") from None
        if not isinstance(meta, dict) or "sha256" not in meta:
            raise CorruptArtifact("meta.json has no checksum")
        if config is not None and meta.get("config") != json.loads(canonical(config)):
            raise CorruptArtifact("stored key config differs from the requested one")
        try:
            digest = sha256_file(model_path)
        except OSError as e:
            raise CorruptArtifact(f"model.pt unreadable ({type(e).__name__})") from None
        if digest != meta["sha256"]:
            raise CorruptArtifact(f"model.pt checksum mismatch ({model_path.stat().st_size} bytes)")
        return meta

    def load(self, kind: str, config: dict, repair: bool = True) -> dict | None:
        """The stored state dict, or None if absent. A corrupt artifact is never returned: with
        ``repair`` (the lock holder) it is moved aside so that the caller retrains it."""
        if not self.enabled:
            return None
        d = self.dir_for(kind, config)
        if not (d / "meta.json").exists():  # absent, or only the side files of a training (samples, report)
            return None
        try:
            self.verify(d, config)
            try:
                import torch

                return torch.load(d / "model.pt", map_location="cpu", weights_only=True)
            except Exception as e:  # noqa: BLE001 - checksum fine but not a loadable state dict
                raise CorruptArtifact(f"torch.load failed ({type(e).__name__}: {e})") from None
        except CorruptArtifact as e:
            if repair:
                bad = d.with_name(f"{d.name}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}")
                os.replace(d, bad)
                print(f"[artifacts] {d.name}: unusable ({e}); moved to {bad.name}, will retrain", flush=True)
            return None

    # -- writing --------------------------------------------------------------------------------
    def save(self, kind: str, config: dict, state: dict, extra: dict | None = None, side_files=()) -> Path:
        """Write model.pt + meta.json (+ ``side_files``, e.g. curve.csv) into a staging folder, then
        rename it into place (atomic)."""
        d = self.dir_for(kind, config)
        if not self.enabled:
            return d
        self.root.mkdir(parents=True, exist_ok=True)
        import torch

        stage = Path(tempfile.mkdtemp(dir=self.root, prefix=f".stage-{d.name}-"))
        try:
            buf = io.BytesIO()
            torch.save(state, buf)
            data = buf.getvalue()
            atomic_write_bytes(stage / "model.pt", data)
            for f in side_files:
                if Path(f).is_file():
                    shutil.copyfile(f, stage / Path(f).name)
            meta = {"kind": kind, "key": config_key(config), "config": json.loads(canonical(config)),
                    "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data),
                    "created": time.strftime("%Y-%m-%dT%H:%M:%S"), **(extra or {})}
            atomic_write_text(stage / "meta.json", json.dumps(meta, indent=2, default=str))
            if d.exists():
                if not (d / "meta.json").exists():  # side files written during training: keep them
                    for f in d.iterdir():
                        if f.is_file() and f.name not in ("model.pt", "meta.json"):
                            os.replace(f, stage / f.name)
                self._discard(d)  # (an older complete copy is replaced)
            os.rename(stage, d)
            _fsync_dir(self.root)
        except BaseException:
            shutil.rmtree(stage, ignore_errors=True)
            raise
        return d

    def _discard(self, d: Path) -> None:
        """Rename first (readers never see a half-deleted folder), then delete."""
        trash = d.with_name(f".trash-{d.name}-{os.getpid()}-{time.time_ns()}")
        os.replace(d, trash)
        shutil.rmtree(trash, ignore_errors=True)

    # -- housekeeping -----------------------------------------------------------------------------
    def entries(self, kind: str | None = None, verify: bool = False) -> list[dict]:
        """One dict per folder under root: kind, key, path, bytes, status (ok | corrupt | unchecked)
        plus the meta fields; corrupt folders moved aside are listed with status 'corrupt'."""
        if not self.root.exists():
            return []
        out = []
        for d in sorted(p for p in self.root.iterdir() if p.is_dir() and not p.name.startswith(".")):
            meta: dict = {}
            status = "corrupt" if ".corrupt-" in d.name else "unchecked"
            if not (d / "meta.json").exists():
                status = "corrupt" if status == "corrupt" else "incomplete"  # training now, or killed
            else:
                try:
                    meta = json.loads((d / "meta.json").read_text())
                except (OSError, ValueError):
                    status = "corrupt"
            if verify and status == "unchecked":
                try:
                    self.verify(d)
                    status = "ok"
                except CorruptArtifact:
                    status = "corrupt"
            base = d.name.split(".corrupt-")[0]  # <kind>-<key>
            k = meta.get("kind") or base.rsplit("-", 1)[0]
            if kind is not None and k != kind:
                continue
            size = sum(f.stat().st_size for f in d.iterdir() if f.is_file())
            out.append({**meta, "kind": k, "key": meta.get("key") or base.rsplit("-", 1)[-1],
                        "path": str(d), "bytes": size, "status": status})
        return out

    def list(self, kind: str | None = None) -> list[dict]:
        """Complete artifacts (not incomplete ones, nor the folders moved aside as corrupt)."""
        return [e for e in self.entries(kind) if e["status"] in ("ok", "unchecked")]

    def clear(self, kind: str | None = None) -> int:
        """Delete the artifacts of ``kind`` (all if None), corrupt ones included; returns how many.
        Each deletion holds that artifact's lock, so a cell loading it is never cut short."""
        n = 0
        for e in self.entries(kind):
            d = Path(e["path"])
            if ".corrupt-" in d.name:
                shutil.rmtree(d, ignore_errors=True)
            else:
                with FileLock(str(self.root / f".{d.name}.lock")):  # lock files stay: waiters hold them
                    if d.exists():
                        self._discard(d)
            n += 1
        if self.root.exists():  # staging folders of writers that were killed (their lock is free)
            for p in self.root.glob(".stage-*"):
                name = p.name[len(".stage-"):].rsplit("-", 1)[0]
                if kind is not None and name.rsplit("-", 1)[0] != kind:
                    continue
                lock = FileLock(str(self.root / f".{name}.lock"))
                try:
                    lock.acquire(timeout=0)
                except Timeout:
                    continue  # being written right now
                try:
                    shutil.rmtree(p, ignore_errors=True)
                finally:
                    lock.release()
        return n
