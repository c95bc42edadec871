"""The runner: ``entry.py`` (Hydra entry, one-line errors), ``cell.py`` (one cell, top to bottom),
``folder.py`` (one result per folder, never lost), ``sweep.py`` (outcomes, exit status),
``ddp_launch.py`` (ranks > 0 of a DDP cell). Nothing below the runner imports it."""
