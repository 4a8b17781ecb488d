"""Safetensors only, by content: every weight file a checkpoint names is checked before transformers opens it.

transformers follows `model.safetensors.index.json`'s weight_map to whatever files it names, and reads a
`.bin` there with `torch.load` (a pickle). So the weight files are found here, the same way, and each must be
a complete safetensors file: an 8-byte little-endian header length, a JSON header describing tensors whose
data exactly fills the rest of the file. A pickle, a zip (torch.save), random bytes or a truncated copy is
refused before any byte of it is deserialised, with the file's name in the message.
"""
from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sr_real_core.errors import UserError

SAFETENSORS_FILE = "model.safetensors"
SAFETENSORS_INDEX = "model.safetensors.index.json"
MAX_HEADER_BYTES = 100 * 1024 * 1024  # the safetensors library's own limit


class CorruptCheckpointError(UserError):
    """A checkpoint file that is not what it must be; the text names the file."""


def weight_files(directory: str | Path) -> list[Path]:
    """The weight files transformers may open for this checkpoint (the single file and, when there is one, every
    file of the index: which one it prefers differs between versions), each checked (`check_safetensors`)."""
    directory = Path(directory)
    index = directory / SAFETENSORS_INDEX
    names = [SAFETENSORS_FILE] if (directory / SAFETENSORS_FILE).is_file() else []
    if index.is_file():
        names += [name for name in _index_weight_files(index) if name not in names]
    if not names:
        raise CorruptCheckpointError(f"{directory}: no {SAFETENSORS_FILE} or {SAFETENSORS_INDEX} (weights are "
                                     "read from safetensors only)")
    files = []
    for name in names:
        path = (directory / name).resolve()
        if directory.resolve() not in path.parents:
            raise CorruptCheckpointError(f"{index}: weight file {name!r} lies outside the checkpoint folder")
        check_safetensors(path)
        files.append(path)
    return files


def _index_weight_files(index: Path) -> list[str]:
    try:
        weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
    except (ValueError, KeyError, TypeError, RecursionError) as error:
        raise CorruptCheckpointError(f"{index}: corrupt index ({type(error).__name__}: {error}); expected JSON "
                                     "with a weight_map {tensor: file}") from None
    if not isinstance(weight_map, dict) or not weight_map or not all(
            isinstance(name, str) for name in weight_map.values()):
        raise CorruptCheckpointError(f"{index}: weight_map must map tensor names to file names")
    return sorted(set(weight_map.values()))


def check_safetensors(path: str | Path) -> None:
    """CorruptCheckpointError naming `path` unless it is a complete safetensors file (header checked, tensors
    read by nobody)."""
    path = Path(path)
    if not path.is_file():
        raise CorruptCheckpointError(f"{path}: weight file missing")
    size = path.stat().st_size
    with path.open("rb") as handle:
        prefix = handle.read(8)
        if len(prefix) < 8:
            raise CorruptCheckpointError(f"{path}: not a safetensors file ({size} bytes: truncated or empty)")
        (header_length,) = struct.unpack("<Q", prefix)
        if not 2 <= header_length <= min(MAX_HEADER_BYTES, size - 8):
            raise CorruptCheckpointError(f"{path}: not a safetensors file (no valid header: a pickle, torch.save "
                                         "archive, random bytes or a truncated copy); only safetensors are read")
        header_bytes = handle.read(header_length)
    try:
        header = json.loads(header_bytes.decode("utf-8"))
        end = max((int(entry["data_offsets"][1]) for name, entry in header.items() if name != "__metadata__"),
                  default=0)
    except (ValueError, KeyError, TypeError, AttributeError, IndexError):
        raise CorruptCheckpointError(f"{path}: not a safetensors file (its header is not a tensor table)") from None
    if 8 + header_length + end != size:
        raise CorruptCheckpointError(f"{path}: corrupt safetensors file: the header describes "
                                     f"{8 + header_length + end} bytes, the file has {size} (an interrupted copy?)")


@contextmanager
def corrupt_weights_named(files: list[Path]) -> Iterator[None]:
    """Turn the safetensors library's error for damaged tensor data (past the header check) into a
    CorruptCheckpointError naming the checkpoint's weight files."""
    from safetensors import SafetensorError

    try:
        yield
    except SafetensorError as error:
        raise CorruptCheckpointError(f"{', '.join(map(str, files))}: corrupt safetensors data ({error})") from None
