"""denoise-bench: image denoisers measured under one protocol."""
import os

# albumentations checks PyPI for updates on import unless told not to
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

__version__ = "0.1.0"
