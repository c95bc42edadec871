"""Store of trained models keyed by what determines them (``store.py``); CLI in ``__main__.py``."""
from denoise_bench.artifacts.store import ArtifactStore, CorruptArtifact
from denoise_bench.atomic import atomic_write_bytes, atomic_write_text, sha256_file
from denoise_bench.identity import canonical, config_key

__all__ = ["ArtifactStore", "CorruptArtifact", "atomic_write_bytes", "atomic_write_text", "canonical", "config_key",
           "sha256_file"]
