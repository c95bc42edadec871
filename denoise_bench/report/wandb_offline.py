"""Read a W&B run file (``run-<id>.wandb``) without the network: history rows, config, summary.

wandb >= 0.18 writes the file from its Go core and ships no Python reader, so this is a small one.
The file is a LevelDB-style log: a 7-byte header (':W&B', magic 0xBEE1, version 0), then 32 KiB
blocks of chunks [crc32 (4) | length (2, little endian) | type (1: full, 2: first, 3: middle,
4: last)]; each reassembled record is a ``wandb_internal_pb2.Record`` protobuf.
"""
from __future__ import annotations

import json
import struct
from pathlib import Path

BLOCK = 32768
HEADER = 7


def records(path: str | Path):
    """Yield every ``Record`` of a ``.wandb`` file (a truncated tail, from a killed run, is ignored)."""
    from wandb.proto import wandb_internal_pb2 as pb

    data = Path(path).read_bytes()
    if data[:4] != b":W&B":
        raise ValueError(f"{path}: not a W&B run file")
    pos, parts = HEADER, []
    while pos + HEADER <= len(data):
        left = BLOCK - pos % BLOCK
        if left < HEADER:  # block trailer: padding
            pos += left
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos:pos + HEADER])
        chunk = data[pos + HEADER:pos + HEADER + length]
        if len(chunk) < length:
            return
        pos += HEADER + length
        if kind == 0 and length == 0:
            continue
        parts.append(chunk)
        if kind in (1, 4):
            rec = pb.Record()
            rec.ParseFromString(b"".join(parts))
            parts = []
            yield rec


def _items(items) -> dict:
    out = {}
    for it in items:
        key = it.key or "/".join(it.nested_key)
        try:
            out[key] = json.loads(it.value_json)
        except json.JSONDecodeError:
            out[key] = it.value_json
    return out


def read_run(path: str | Path) -> dict:
    """{'config': {...}, 'history': [row dicts], 'summary': {...}, 'group': str, 'name': str}."""
    run = {"config": {}, "history": [], "summary": {}, "group": "", "name": ""}
    for rec in records(path):
        kind = rec.WhichOneof("record_type")
        if kind == "run":
            run["group"], run["name"] = rec.run.run_group, rec.run.display_name
            run["config"].update({k: v.get("value", v) if isinstance(v, dict) else v
                                  for k, v in _items(rec.run.config.update).items()})
        elif kind == "config":
            run["config"].update({k: v.get("value", v) if isinstance(v, dict) else v
                                  for k, v in _items(rec.config.update).items()})
        elif kind == "history":
            run["history"].append(_items(rec.history.item))
        elif kind == "summary":
            run["summary"].update(_items(rec.summary.update))
    return run


def run_files(cell_dir: str | Path) -> list[Path]:
    """The cell's W&B run files (offline or synced), oldest first."""
    return sorted(Path(cell_dir).glob("wandb/*run-*/run-*.wandb"))
