"""Importers: public spatial benchmarks -> this project's QA records (``sr-real eval import``).

Every importer reads JSON Lines, JSON (a list of rows, or ``{"data": [...]}``) or Parquet (the Hugging Face
datasets' files), from one file or from every such file under a folder (only the Parquet files when the
folder has any: the releases repeat their rows in JSON beside them), and writes QA records (see ``records``)
whose ``image`` path is relative to the output file. An image embedded in the rows (Parquet ``{bytes,
path}``) is written once to ``<output stem>_images/``; an image given by path is kept where it is (resolved
against ``--image-root``, default the folder of the file that names it), and one that is not on disk is
listed (``strict``: an error, and nothing is written). CSV is refused with a message naming the files to
use. The benchmark's own fields are kept under ``source``; ids are the benchmark's ids where it has them,
so that predictions made elsewhere still match. A row that cannot be converted (an answer that cannot be
read, a missing field) is skipped and reported by id with the reason; it never disappears silently.

SpatialRGPT-Bench (``a8cheng/SpatialRGPT-Bench``: ``data/val-*.parquet`` embeds the images)
    Rows ``{id, image, image_info{file_path, ...}, text_q, conversations, bbox, rle, qa_info{type, category}}``
    (nested fields arrive as JSON or Python-literal strings). Question: ``text_q``; answer: the first "gpt"
    turn. qa_info.type quantitative -> numeric (category ``distance_data`` -> ``distance``, ...; ``direction``
    -> direction); qualitative ``*_predicate`` -> yesno, ``*_choice`` -> choice with options = the regions
    in order of mention ("Region [0]", "Region [1]"). The solution is read from the benchmark's own answer
    with the same understanding as predictions (``understanding``). Image: the embedded one, else
    ``image_info.file_path``. Regions: ``{ref: "Region [i]", bbox_2d, rle, mask}``: ``bbox_2d`` from ``bbox``
    ([x1, y1, x2, y2] px), else from the bounds of ``rle`` (COCO run-length, compressed or not); ``mask``: the
    RLE written out as a PNG under ``<output stem>_masks/``, the region its protocol gives the model (the
    official evaluation uses the masks; the boxes are looser).
Q-Spatial (``andrewliao11/Q-Spatial-Bench``: splits QSpatial_plus, QSpatial_scannet)
    Rows ``{question, answer_value, answer_unit, question_type, image_path, image}``; the solution is
    ``answer_value`` in ``answer_unit`` converted to metres (float32 values are read back as the shortest
    decimal they hold: 0.3, not 0.30000001192092896); ids ``<split>_<row>`` (the split is the file name
    before ``-0000x-of-...``); category = ``question_type``. QSpatial_scannet rows carry no image bytes:
    pass ``--image-root`` to the ScanNet frames fetched with the benchmark's own script.
CV-Bench 3D (``nyu-visionx/CV-Bench``: ``test_2d`` / ``test_3d`` as ``.parquet`` with the images and as
``.jsonl`` naming ``img/`` files that its ``build_img.py`` writes)
    Rows ``{idx, type, task, question, choices, answer: "(A)", prompt, filename, image, ...}``; only
    ``type == "3D"`` rows (tasks Depth and Distance) are imported, as choice questions: question = ``prompt``
    (the question with its lettered choices), options = ``choices``, category ``depth_choice`` /
    ``distance_choice``. The boxes are drawn in CV-Bench's images already; they are kept under ``source``.
"""

from __future__ import annotations

import ast
import io
import json
import os
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sr_real_core.answers import length_unit, metres_per_unit, parse_choice
from sr_real_core.evaluation import BENCHMARKS
from sr_real_core.evaluation.records import EvaluationInputError
from sr_real_core.evaluation.understanding import record_participants, understand

_ROW_SUFFIXES = (".jsonl", ".json", ".parquet")
_SHARD_SUFFIX_RE = re.compile(r"-\d{5}-of-\d{5}$")


@dataclass
class ImportResult:
    records: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # "<id>: <reason>"
    filtered: int = 0  # rows outside the importer's scope (CV-Bench 2D)
    missing_images: list[str] = field(default_factory=list)  # images given by path that are not on disk (yet)

    @property
    def images_missing(self) -> int:
        return len(self.missing_images)

    def missing_images_message(self) -> str:
        """One line: how many images are missing, the first of them, and what to do."""
        return (f"{self.images_missing} image(s) are not on disk, e.g. {self.missing_images[0]}; give --image-root "
                "(the folder the benchmark's image paths are relative to) or import the Parquet file that embeds "
                "the images")


class _Skip(ValueError):
    """A row that cannot be converted; the message is the reason."""


@dataclass(frozen=True)
class _Row:
    data: Mapping[str, Any]
    file: Path  # where the row was read
    index: int  # position in that file


# -------------------------------------------------------------------------------------------- reading


def read_rows(source: str | Path) -> Iterator[_Row]:
    """Every row of a JSON Lines / JSON / Parquet file, or of all such files under a folder (sorted). A
    folder with Parquet files is read from those only: the Hugging Face releases embed the images there and
    repeat the same rows in JSON beside them (CV-Bench's test_3d.jsonl, SpatialRGPT-Bench_v1.json)."""
    source = Path(source)
    if source.is_dir():
        files = sorted(path for path in source.rglob("*") if path.suffix in _ROW_SUFFIXES and path.is_file())
        if any(path.suffix == ".parquet" for path in files):
            files = [path for path in files if path.suffix == ".parquet"]
        elif not files and any(source.rglob("*.csv")):
            raise EvaluationInputError(_csv_message(next(source.rglob("*.csv"))))
    elif source.is_file():
        if source.suffix.lower() == ".csv":
            raise EvaluationInputError(_csv_message(source))
        files = [source]
    else:
        raise EvaluationInputError(f"{source}: no such file or folder")
    if not files:
        raise EvaluationInputError(f"{source}: no .jsonl, .json or .parquet files")
    for path in files:
        for index, data in enumerate(_rows_of_file(path)):
            yield _Row(data, path, index)


def _csv_message(path: Path) -> str:
    return (f"{path}: CSV is not read (CV-Bench's old val.csv flattens its choices and boxes); import the current "
            "release's test_3d.parquet (images embedded) or test_3d.jsonl beside its img/ folder")


def _rows_of_file(path: Path) -> Iterator[Mapping[str, Any]]:
    if path.suffix == ".parquet":
        import pyarrow.parquet as parquet

        yield from parquet.read_table(path).to_pylist()
    elif path.suffix == ".jsonl":
        with path.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if line.strip():
                    yield _object(_json(line, f"{path}:{number}"), f"{path}:{number}")
    else:
        data = _json(path.read_text(encoding="utf-8"), str(path))
        rows = data.get("data") if isinstance(data, dict) else data
        if not isinstance(rows, list):
            raise EvaluationInputError(f"{path}: expected a list of rows or {{'data': [...]}}")
        yield from (_object(row, f"{path}[{index}]") for index, row in enumerate(rows))


def _json(text: str, where: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise EvaluationInputError(f"{where}: not JSON ({error.msg})") from None


def _object(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise EvaluationInputError(f"{where}: expected a JSON object, got {type(value).__name__}")
    return value


def _structured(value: Any) -> Any:
    """Hugging Face exports nested fields as JSON or Python-literal strings; read them back."""
    if not isinstance(value, str):
        return value
    for reader in (json.loads, ast.literal_eval):
        try:
            return reader(value)
        except (ValueError, SyntaxError):
            continue
    return value


# ------------------------------------------------------------------------------------------- importing


@dataclass
class _Context:
    out_path: Path
    image_root: Path | None
    result: ImportResult

    @property
    def image_dir(self) -> Path:
        return self.out_path.parent / f"{self.out_path.stem}_images"

    @property
    def mask_dir(self) -> Path:
        return self.out_path.parent / f"{self.out_path.stem}_masks"

    def image_from_path(self, relative: str, row: _Row, identifier: str) -> str:
        """A benchmark image path, relative to the output file."""
        path = Path(relative) if Path(relative).is_absolute() else (self.image_root or row.file.parent) / relative
        if not path.is_file():
            self.result.missing_images.append(f"{path} (record {identifier})")
        return os.path.relpath(path.resolve(), self.out_path.parent.resolve())

    def image_from_bytes(self, image: Mapping[str, Any], identifier: str) -> str:
        """An embedded image, written once under the images folder; its path relative to the output file."""
        from PIL import Image

        data = image["bytes"]
        with Image.open(io.BytesIO(data)) as opened:
            suffix = "." + (opened.format or "png").lower().replace("jpeg", "jpg")
        self.image_dir.mkdir(parents=True, exist_ok=True)
        target = self.image_dir / f"{_safe_name(identifier)}{suffix}"
        target.write_bytes(data)
        return f"{self.image_dir.name}/{target.name}"

    def image_of(self, row: _Row, identifier: str, *paths: Any) -> str:
        """The row's embedded image (Parquet ``image: {bytes, path}``) written out, else the first of ``paths``
        (the benchmark's image path fields) that is given."""
        embedded = row.data.get("image")
        if isinstance(embedded, Mapping) and embedded.get("bytes"):
            return self.image_from_bytes(embedded, identifier)
        for value in paths:
            if isinstance(value, str) and value:
                return self.image_from_path(value, row, identifier)
        if isinstance(embedded, Mapping) and embedded.get("path"):
            return self.image_from_path(embedded["path"], row, identifier)
        raise _Skip("no image (neither embedded bytes nor an image path)")

    def mask_file(self, mask: Any, identifier: str, index: int) -> str:
        """A region mask (boolean H x W) as a PNG under the masks folder; its path relative to the output file."""
        from PIL import Image

        self.mask_dir.mkdir(parents=True, exist_ok=True)
        target = self.mask_dir / f"{_safe_name(identifier)}_{index}.png"
        Image.fromarray(mask.astype("uint8") * 255).save(target)
        return f"{self.mask_dir.name}/{target.name}"


def _safe_name(identifier: str) -> str:
    return re.sub(r"[^\w.-]+", "_", identifier)


def import_benchmark(benchmark: str, source: str | Path, out_path: str | Path, *, image_root: str | Path | None = None,
                     limit: int | None = None, strict: bool = False) -> ImportResult:
    """Convert ``source`` into QA records written to ``out_path`` (JSON Lines); see the module docstring.
    ``strict``: an image that is not on disk is an EvaluationInputError, and nothing is written."""
    if benchmark not in _CONVERTERS:
        raise ValueError(f"unknown benchmark {benchmark!r}; expected one of {BENCHMARKS}")
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    result = ImportResult()
    context = _Context(out_path, Path(image_root) if image_root else None, result)
    convert = _CONVERTERS[benchmark]
    seen: set[str] = set()
    for row in read_rows(source):
        if limit is not None and len(result.records) >= limit:
            break
        identifier = _row_id(benchmark, row)
        try:
            record = convert(row, identifier, context)
        except _Skip as reason:
            result.skipped.append(f"{identifier}: {reason}")
            continue
        if record is None:
            result.filtered += 1
        elif record["id"] in seen:
            result.skipped.append(f"{identifier}: duplicate id")
        else:
            seen.add(record["id"])
            result.records.append(record)
    if strict and result.missing_images:
        raise EvaluationInputError(result.missing_images_message())
    partial = out_path.with_name(out_path.name + ".partial")
    with partial.open("w", encoding="utf-8") as handle:
        for record in result.records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    partial.replace(out_path)
    return result


def _row_id(benchmark: str, row: _Row) -> str:
    if benchmark == "qspatial":
        return f"{_SHARD_SUFFIX_RE.sub('', row.file.stem)}_{row.index:04d}"
    key = "idx" if benchmark == "cvbench" else "id"
    value = row.data.get(key)
    return str(value) if value not in (None, "") else f"{row.file.stem}_{row.index:04d}"


# ---------------------------------------------------------------------------------------- SpatialRGPT


def _spatialrgpt(row: _Row, identifier: str, context: _Context) -> dict[str, Any]:
    data = row.data
    qa_info = _structured(data.get("qa_info")) or {}
    image_info = _structured(data.get("image_info")) or {}
    question = data.get("text_q")
    answer = _gpt_answer(_structured(data.get("conversations")))
    if not isinstance(question, str) or not question.strip():
        raise _Skip("no text_q")
    if not isinstance(qa_info, Mapping) or "category" not in qa_info:
        raise _Skip("no qa_info.category")
    if not isinstance(image_info, Mapping):
        image_info = {}
    source_category = str(qa_info["category"])
    answer_type = _spatialrgpt_answer_type(str(qa_info.get("type", "")), source_category)
    record: dict[str, Any] = {
        "id": identifier,
        "scene_id": str(image_info.get("file_path") or identifier),
        "question": question,
        "answer": answer,
        "category": source_category.removesuffix("_data"),
        "answer_type": answer_type,
        "regions": _spatialrgpt_regions(data, identifier, context),
    }
    if answer_type == "choice":
        record["options"] = [participant.label for participant in record_participants(record, question)]
    record["solution"] = _solution_from_answer(answer, answer_type, record)
    record["image"] = context.image_of(row, identifier, image_info.get("file_path"))
    record["source"] = {"benchmark": "spatialrgpt", "qa_type": qa_info.get("type"), "category": source_category,
                        "image_info": image_info}
    return record


def _gpt_answer(conversations: Any) -> str:
    turns = conversations if isinstance(conversations, list) else []
    gpt_turns = (turn.get("value") for turn in turns if isinstance(turn, Mapping) and turn.get("from") == "gpt")
    answer = next(gpt_turns, None)
    if not isinstance(answer, str) or not answer.strip():
        raise _Skip("no answer (a 'gpt' turn in conversations)")
    return answer


def _spatialrgpt_answer_type(qa_type: str, category: str) -> str:
    if category == "direction":
        return "direction"
    if qa_type == "quantitative" or category.endswith("_data"):
        return "numeric"
    if category.endswith("_choice"):
        return "choice"
    if category.endswith("_predicate"):
        return "yesno"
    raise _Skip(f"unknown category {category!r} of type {qa_type!r}")


def _spatialrgpt_regions(data: Mapping[str, Any], identifier: str, context: _Context) -> list[dict[str, Any]]:
    """Regions with their box and, where the row has one, the RLE mask written out as a PNG (``mask``):
    SpatialRGPT's own evaluation gives the model the masks, which are tighter than the boxes."""
    try:
        regions = _regions_from(_structured(data.get("bbox")) or [], _structured(data.get("rle")) or [])
        for index, region in enumerate(regions):
            if "rle" in region:
                region["mask"] = context.mask_file(rle_mask(region["rle"]), identifier, index)
        return regions
    except (TypeError, ValueError, KeyError, IndexError) as error:
        raise _Skip(f"malformed bbox or rle ({error})") from None


def _regions_from(boxes: list[Any], masks: list[Any]) -> list[dict[str, Any]]:
    regions = []
    for index in range(max(len(boxes), len(masks))):
        region: dict[str, Any] = {"ref": f"Region [{index}]"}
        box = boxes[index] if index < len(boxes) else None
        if box is None and index < len(masks):
            box = rle_bbox(masks[index])
        if box is not None:
            region["bbox_2d"] = [float(value) for value in box]
        if index < len(masks):
            region["rle"] = masks[index]
        regions.append(region)
    return regions


def _solution_from_answer(answer: str, answer_type: str, record: Mapping[str, Any]) -> Any:
    value = understand(answer, answer_type, record)
    if value is None:
        raise _Skip(f"cannot read a {answer_type} solution from the answer {answer!r}")
    return value


def rle_bbox(rle: Mapping[str, Any]) -> list[float] | None:
    """[x1, y1, x2, y2] (pixel edges) of a COCO run-length mask ``{size: [h, w], counts}``; None if empty.
    Runs alternate background/foreground over the column-major (Fortran-order) pixels."""
    height, width = (int(value) for value in rle["size"])
    counts = rle["counts"]
    runs = _decode_compressed_counts(counts) if isinstance(counts, (str, bytes)) else [int(value) for value in counts]
    x1 = y1 = float("inf")
    x2 = y2 = float("-inf")
    position = 0
    for run_index, length in enumerate(runs):
        if run_index % 2 == 1 and length > 0:
            first, last = position, position + length - 1
            first_column, last_column = first // height, last // height
            x1, x2 = min(x1, first_column), max(x2, last_column)
            if first_column == last_column:
                y1, y2 = min(y1, first % height), max(y2, last % height)
            else:
                y1, y2 = 0, height - 1
        position += length
    if x2 < x1 or position > height * width:
        return None
    return [float(x1), float(y1), float(x2 + 1), float(y2 + 1)]


def rle_mask(rle: Mapping[str, Any]) -> Any:
    """The boolean (h, w) mask of a COCO run-length mask (compressed or plain counts)."""
    import numpy as np

    height, width = (int(value) for value in rle["size"])
    counts = rle["counts"]
    runs = _decode_compressed_counts(counts) if isinstance(counts, (str, bytes)) else [int(value) for value in counts]
    if any(run < 0 for run in runs) or sum(runs) > height * width:
        raise ValueError(f"run lengths do not fit a {height}x{width} mask")
    flat = np.zeros(height * width, dtype=bool)
    position = 0
    for run_index, length in enumerate(runs):
        if run_index % 2 == 1:
            flat[position:position + length] = True
        position += length
    return flat.reshape((width, height)).T  # runs go down the columns (Fortran order)


def _decode_compressed_counts(text: str | bytes) -> list[int]:
    """COCO's compressed counts: 5-bit groups offset by 48, 0x20 = more groups follow, 0x10 in the last
    group = negative; from the third count on, each is stored as a difference to the count two before."""
    data = text.encode() if isinstance(text, str) else text
    counts: list[int] = []
    position = 0
    while position < len(data):
        value, shift, more = 0, 0, True
        while more:
            group = data[position] - 48
            value |= (group & 0x1F) << shift
            more = bool(group & 0x20)
            position += 1
            shift += 5
            if not more and group & 0x10:
                value |= -1 << shift
        if len(counts) > 2:
            value += counts[-2]
        counts.append(value)
    return counts


# ------------------------------------------------------------------------------------------- Q-Spatial


def _qspatial(row: _Row, identifier: str, context: _Context) -> dict[str, Any]:
    data = row.data
    question, value, unit = data.get("question"), data.get("answer_value"), data.get("answer_unit")
    if not isinstance(question, str) or not question.strip():
        raise _Skip("no question")
    if _qspatial_metres(value, unit) is None:
        raise _Skip(f"answer_value {value!r} answer_unit {unit!r} is not a positive length in a known unit")
    value = _shortest_float(value)
    return {
        "id": identifier,
        "scene_id": str(data.get("image_path") or identifier),
        "image": context.image_of(row, identifier, data.get("image_path")),
        "question": question,
        "answer": f"{value:.15g} {unit}",
        "category": str(data.get("question_type") or "distance"),
        "answer_type": "numeric",
        "solution": _qspatial_metres(value, unit),
        "source": {"benchmark": "qspatial", "split": _SHARD_SUFFIX_RE.sub("", row.file.stem),
                   **{key: data.get(key) for key in ("answer_unit", "question_type", "image_path")},
                   "answer_value": value},
    }


def _qspatial_metres(value: Any, unit: Any) -> float | None:
    """value * metres per unit; None for an unknown unit or a value that is not a positive number."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        return None
    unit_key = length_unit(unit)
    return float(value) * metres_per_unit(unit_key) if unit_key else None


def _shortest_float(value: float) -> float:
    """Parquet float32 values arrive widened (0.30000001192092896); the shortest decimal that is the same
    float32 (0.3) is the value the benchmark's authors wrote. Other floats are kept as they are."""
    import numpy as np

    single = np.float32(value)
    if not np.isfinite(single) or float(single) != float(value):
        return float(value)
    return float(np.format_float_positional(single, unique=True, trim="-"))


# -------------------------------------------------------------------------------------------- CV-Bench


def _cvbench(row: _Row, identifier: str, context: _Context) -> dict[str, Any] | None:
    data = row.data
    if str(data.get("type", "")).upper() != "3D":
        return None
    choices = _structured(data.get("choices"))
    if not isinstance(choices, list) or len(choices) < 2:
        raise _Skip("no choices")
    letters = [chr(ord("A") + index) for index in range(len(choices))]
    solution = parse_choice(str(data.get("answer", "")), letters)
    if solution is None:
        raise _Skip(f"answer {data.get('answer')!r} is not one of {letters}")
    question = data.get("prompt") or _with_choices(str(data.get("question", "")), choices)
    task = str(data.get("task", "3d")).lower()
    return {
        "id": identifier,
        "scene_id": str(data.get("filename") or identifier),
        "image": context.image_of(row, identifier, data.get("filename")),
        "question": question,
        "answer": f"({solution}) {choices[letters.index(solution)]}",
        "category": f"{task}_choice",
        "answer_type": "choice",
        "solution": solution,
        "options": [str(choice) for choice in choices],
        "source": {"benchmark": "cvbench", **{key: _jsonable(value) for key, value in data.items() if key != "image"}},
    }


def _with_choices(question: str, choices: list[Any]) -> str:
    listed = "\n".join(f"({chr(ord('A') + index)}) {choice}" for index, choice in enumerate(choices))
    return f"{question} Select from the following choices.\n{listed}"


def _jsonable(value: Any) -> Any:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


_CONVERTERS: dict[str, Callable[[_Row, str, _Context], dict[str, Any] | None]] = dict(
    zip(BENCHMARKS, (_spatialrgpt, _qspatial, _cvbench), strict=True)
)
