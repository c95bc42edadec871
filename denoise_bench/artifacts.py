"""Store of trained models, keyed by a hash of exactly the config that determines them.

A sweep trains each shared model once: a DnCNN per sigma, a Glow prior per dataset, an FDN per
sigma... Evaluation-only keys (the test sigma of a prior-based method, beta, metric switches) are
not part of the key, so every cell that needs the same model finds it here.

Layout: ``<root>/<kind>-<key>/{model.pt, meta.json}``. ``meta.json`` holds the full key config and
the SHA-256 of ``model.pt``; both are written atomically and the checksum is verified on load, so a
half-written or corrupted file is never used. Concurrent cells that need the same artifact
serialise on a file lock: the first trains, the others wait and load.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

import torch
from filelock import FileLock

from denoise_bench.errors import TrainingError


def canonical(obj) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def config_key(config: dict) -> str:
    return hashlib.sha256(canonical(config).encode()).hexdigest()[:16]


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(Path(path), text.encode())


class ArtifactStore:
    def __init__(self, root: str | Path, enabled: bool = True):
        self.root = Path(root).expanduser()
        self.enabled = enabled

    def dir_for(self, kind: str, config: dict) -> Path:
        return self.root / f"{kind}-{config_key(config)}"

    @contextmanager
    def lock(self, kind: str, config: dict):
        self.root.mkdir(parents=True, exist_ok=True)
        with FileLock(str(self.root / f".{kind}-{config_key(config)}.lock")):
            yield

    def load(self, kind: str, config: dict) -> dict | None:
        """The stored state dict, None if absent; a corrupt artifact is moved aside and reported."""
        if not self.enabled:
            return None
        d = self.dir_for(kind, config)
        meta_path, model_path = d / "meta.json", d / "model.pt"
        if not meta_path.exists():
            return None
        try:
            meta = json.loads(meta_path.read_text())
            if meta.get("config") != json.loads(canonical(config)):
                raise TrainingError(f"{d}: stored config differs from the requested one")
            if sha256_file(model_path) != meta["sha256"]:
                raise ValueError("checksum mismatch")
            return torch.load(model_path, map_location="cpu", weights_only=True)
        except TrainingError:
            raise
        except Exception as e:  # noqa: BLE001 - truncated, corrupt, unreadable
            bad = d.with_name(d.name + ".corrupt")
            shutil.rmtree(bad, ignore_errors=True)
            os.replace(d, bad)
            print(f"[artifacts] {d.name}: unusable ({type(e).__name__}: {e}); moved to {bad.name}, will retrain")
            return None

    def save(self, kind: str, config: dict, state: dict, extra: dict | None = None) -> Path:
        if not self.enabled:
            return self.dir_for(kind, config)
        d = self.dir_for(kind, config)
        import io

        buf = io.BytesIO()
        torch.save(state, buf)
        atomic_write_bytes(d / "model.pt", buf.getvalue())
        meta = {"kind": kind, "key": config_key(config), "config": json.loads(canonical(config)),
                "sha256": sha256_file(d / "model.pt"), **(extra or {})}
        atomic_write_text(d / "meta.json", json.dumps(meta, indent=2))  # written last: marks it complete
        return d

    def list(self) -> list[dict]:
        if not self.root.exists():
            return []
        out = []
        for meta in sorted(self.root.glob("*/meta.json")):
            try:
                m = json.loads(meta.read_text())
            except json.JSONDecodeError:
                continue
            m["path"] = str(meta.parent)
            m["bytes"] = (meta.parent / "model.pt").stat().st_size if (meta.parent / "model.pt").exists() else 0
            out.append(m)
        return out

    def clear(self, kind: str | None = None) -> int:
        n = 0
        for m in self.list():
            if kind is None or m.get("kind") == kind:
                shutil.rmtree(m["path"], ignore_errors=True)
                n += 1
        return n
