"""Scene records: the project's data contract for RGB-D scenes with objects.

File format
-----------
A scenes file is JSON Lines: one JSON object per line, blank lines ignored, UTF-8. Paths inside a record
are relative to the directory of the scenes file (absolute paths are allowed). One record::

    {"scene_id": "kitchen_3", "image": "rgb/3.png", "depth": "depth/3.png", "depth_unit": 0.001,
     "up": [0, -0.87, -0.5],
     "intrinsics": {"fx": 525.0, "fy": 525.0, "cx": 319.5, "cy": 239.5, "width": 640, "height": 480},
     "objects": [{"name": "mug", "bbox_2d": [120, 80, 180, 150], "center_3d": [0.1, 0.05, 0.9],
                  "size_3d": [0.09, 0.1, 0.09], "yaw": 0.0, "mask": "masks/3_mug.png"}]}

Scene fields
- ``scene_id`` (required): non-empty string, unique within the file.
- ``image`` (required): path of the RGB image (anything OpenCV reads).
- ``intrinsics`` (required): ``{fx, fy, cx, cy, width, height}`` of the image, optionally ``skew``,
  ``distortion_model`` and ``distortion`` (see ``geometry.Intrinsics.from_dict``; other keys are refused).
- ``depth`` (optional): depth map registered to the image, same size: a 16-bit PNG or a ``.npy`` array.
- ``depth_unit`` (optional, only with ``depth``): metres per stored unit. Default 0.001 for PNG and other
  images (uint16 millimetres; TUM uses 0.0002) and 1.0 for ``.npy`` (float32 metres).
- ``up`` (optional): the up direction (against gravity) in the camera frame, 3 numbers, any length, not
  along the optical axis. Default ``[0, -1, 0]``, a level camera. Heights and horizontal relations are
  measured in the gravity frame it defines (``geometry.gravity_frame``).
- ``objects`` (optional): a list of objects.

Object fields: ``name`` (required, non-empty string); optional ``bbox_2d`` ``[x1, y1, x2, y2]`` pixels
with x1 < x2, y1 < y2 (pixel-edge coordinates: the tight box of pixel columns a..b is [a, b + 1]);
``center_3d`` ``[x, y, z]`` metres in the camera frame (OpenCV: +x right, +y down, +z forward);
``size_3d`` ``[width, height, depth]`` metres, non-negative, along the gravity-aligned axes (across the
view, along up, along the horizontal viewing direction; see ``region3d``); ``yaw`` radians about up
(see ``relations``); ``mask`` path of an 8-bit image, non-zero = object.

Any other field, in a scene or an object, is kept in ``extra`` and written back untouched.
Loading validates every record; errors name the file, the line and the field, e.g.
``scenes.jsonl:3: objects[1].bbox_2d: expected 4 numbers, got 3``.
"""

from __future__ import annotations

import json
import math
import numbers
import os
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from sr_real_core.geometry import CalibrationError, Intrinsics, gravity_frame, load_depth
from sr_real_core.region3d import lift_region

SCENE_FIELDS = ("scene_id", "image", "depth", "depth_unit", "up", "intrinsics", "objects")
OBJECT_FIELDS = ("name", "bbox_2d", "center_3d", "size_3d", "yaw", "mask")


class SceneFormatError(ValueError):
    """An invalid scenes file: ``path:line: field: message``."""

    def __init__(self, path: str | Path, line: int, field: str | None, message: str) -> None:
        self.path, self.line, self.field = str(path), line, field
        super().__init__(f"{path}:{line}: {field + ': ' if field else ''}{message}")


class _FieldError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        self.field, self.message = field, message
        super().__init__(f"{field}: {message}")


def _string(record: Mapping[str, Any], key: str, where: str, *, required: bool = False) -> str | None:
    value = record.get(key)
    if value is None:
        if required:
            raise _FieldError(where + key, "missing (required)")
        return None
    if not isinstance(value, str) or not value:
        raise _FieldError(where + key, f"expected a non-empty string, got {value!r}")
    return value


def _number(value: Any, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise _FieldError(field, f"expected a finite number, got {value!r}")
    return value


def _numbers(record: Mapping[str, Any], key: str, where: str, count: int) -> list[float] | None:
    value = record.get(key)
    if value is None:
        return None
    if not isinstance(value, list):
        raise _FieldError(where + key, f"expected a list of {count} numbers, got {value!r}")
    if len(value) != count:
        raise _FieldError(where + key, f"expected {count} numbers, got {len(value)}")
    return [_number(item, f"{where}{key}[{i}]") for i, item in enumerate(value)]


@dataclass
class SceneObject:
    """One object of a scene (see the module docstring for the fields)."""

    name: str
    bbox_2d: list[float] | None = None
    center_3d: list[float] | None = None
    size_3d: list[float] | None = None
    yaw: float | None = None
    mask: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_record(cls, record: Any, where: str = "") -> SceneObject:
        """Validate one object record; ``where`` prefixes field names in errors (e.g. ``objects[1].``)."""
        if not isinstance(record, dict):
            raise _FieldError(where.rstrip("."), f"expected a JSON object, got {record!r}")
        bbox = _numbers(record, "bbox_2d", where, 4)
        if bbox is not None and not (bbox[0] < bbox[2] and bbox[1] < bbox[3]):
            raise _FieldError(where + "bbox_2d", f"expected x1 < x2 and y1 < y2, got {bbox}")
        size = _numbers(record, "size_3d", where, 3)
        if size is not None and min(size) < 0:
            raise _FieldError(where + "size_3d", f"extents must be non-negative, got {size}")
        yaw = record.get("yaw")
        return cls(
            name=_string(record, "name", where, required=True),
            bbox_2d=bbox,
            center_3d=_numbers(record, "center_3d", where, 3),
            size_3d=size,
            yaw=None if yaw is None else _number(yaw, where + "yaw"),
            mask=_string(record, "mask", where),
            extra={key: value for key, value in record.items() if key not in OBJECT_FIELDS},
        )

    def to_record(self) -> dict[str, Any]:
        known = {key: getattr(self, key) for key in OBJECT_FIELDS}
        return {key: value for key, value in known.items() if value is not None} | self.extra


@dataclass
class Scene:
    """One scene record. Relative paths resolve against ``base_dir``, the scenes file's directory
    (``None`` for a scene built in code: paths are then taken as they are, and written as they are)."""

    scene_id: str
    image: str
    intrinsics: Intrinsics
    depth: str | None = None
    depth_unit: float | None = None
    up: list[float] | None = None
    objects: list[SceneObject] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    base_dir: Path | None = field(default=None, compare=False)

    @classmethod
    def from_record(cls, record: Any, base_dir: str | Path | None = None) -> Scene:
        """Validate one scene record, fields in the documented order; errors are ValueErrors whose
        message starts with the field (``load_scenes`` adds the file and line)."""
        if not isinstance(record, dict):
            raise _FieldError("record", f"expected a JSON object, got {type(record).__name__}")
        scene_id = _string(record, "scene_id", "", required=True)
        image = _string(record, "image", "", required=True)
        intrinsics = _intrinsics(record.get("intrinsics"))
        depth = _string(record, "depth", "")
        depth_unit = record.get("depth_unit")
        if depth_unit is not None:
            if depth is None:
                raise _FieldError("depth_unit", "given without a depth map")
            if _number(depth_unit, "depth_unit") <= 0:
                raise _FieldError("depth_unit", f"expected positive metres per unit, got {depth_unit!r}")
        up = _up(record)
        objects = record.get("objects", [])
        if not isinstance(objects, list):
            raise _FieldError("objects", f"expected a list, got {objects!r}")
        return cls(
            scene_id=scene_id,
            image=image,
            intrinsics=intrinsics,
            depth=depth,
            depth_unit=depth_unit,
            up=up,
            objects=[SceneObject.from_record(item, f"objects[{i}].") for i, item in enumerate(objects)],
            extra={key: value for key, value in record.items() if key not in SCENE_FIELDS},
            base_dir=None if base_dir is None else Path(base_dir),
        )

    def to_record(self, relative_to: str | Path | None = None) -> dict[str, Any]:
        """The JSON record; with ``relative_to`` (a directory), relative paths are rewritten to be
        relative to it instead of ``base_dir``."""

        def rebase(path: str | None) -> str | None:
            if path is None or relative_to is None or self.base_dir is None or Path(path).is_absolute():
                return path
            return Path(os.path.relpath(self.base_dir / path, relative_to)).as_posix()

        known = {
            "scene_id": self.scene_id,
            "image": rebase(self.image),
            "depth": rebase(self.depth),
            "depth_unit": self.depth_unit,
            "up": self.up,
            "intrinsics": self.intrinsics.to_dict(),
            "objects": [obj.to_record() | ({"mask": rebase(obj.mask)} if obj.mask else {}) for obj in self.objects],
        }
        return {key: value for key, value in known.items() if value is not None} | self.extra

    def resolve(self, relative: str) -> Path:
        """A path of this record resolved against the scenes file's directory."""
        return Path(relative) if self.base_dir is None else self.base_dir / relative

    def load_image(self) -> np.ndarray:
        """The image as RGB uint8 (H, W, 3)."""
        bgr = cv2.imread(str(self.resolve(self.image)), cv2.IMREAD_COLOR)
        if bgr is None:
            raise FileNotFoundError(f"scene {self.scene_id!r}: cannot read image {self.resolve(self.image)}")
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)

    def load_depth(self) -> np.ndarray:
        """The depth map as float32 metres, NaN where invalid (see ``geometry.load_depth``)."""
        if self.depth is None:
            raise ValueError(f"scene {self.scene_id!r}: has no depth map")
        try:
            return load_depth(self.resolve(self.depth), self.depth_unit)
        except (OSError, ValueError) as error:
            raise type(error)(f"scene {self.scene_id!r}: {error}") from error

    def load_mask(self, object_index: int) -> np.ndarray:
        """The boolean (H, W) mask of ``objects[object_index]``."""
        obj = self.objects[object_index]
        if obj.mask is None:
            raise ValueError(f"scene {self.scene_id!r}: objects[{object_index}] has no mask")
        image = cv2.imread(str(self.resolve(obj.mask)), cv2.IMREAD_GRAYSCALE)
        if image is None:
            raise FileNotFoundError(f"scene {self.scene_id!r}: cannot read mask {self.resolve(obj.mask)}")
        return image != 0


def _intrinsics(value: Any) -> Intrinsics:
    if not isinstance(value, dict):
        raise _FieldError("intrinsics", f"expected an object {{fx, fy, cx, cy, width, height}}, got {value!r}")
    try:
        return Intrinsics.from_dict(value)
    except CalibrationError as error:  # its message starts with the field name
        field_name, message = str(error).split(": ", 1)
        raise _FieldError(f"intrinsics.{field_name}", message) from error


def _up(record: Mapping[str, Any]) -> list[float] | None:
    up = _numbers(record, "up", "", 3)
    if up is not None:
        try:
            gravity_frame(up)
        except ValueError as error:
            raise _FieldError("up", str(error).removeprefix("up: ")) from error
    return up


def load_scenes(path: str | Path) -> list[Scene]:
    """Load and validate a scenes file; raises ``SceneFormatError`` naming file, line and field."""
    path = Path(path)
    scenes: list[Scene] = []
    first_line: dict[str, int] = {}
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                scene = Scene.from_record(json.loads(line), base_dir=path.parent)
            except json.JSONDecodeError as error:
                message = f"invalid JSON: {error.msg} (column {error.colno})"
                raise SceneFormatError(path, number, None, message) from None
            except _FieldError as error:
                raise SceneFormatError(path, number, error.field, error.message) from None
            if scene.scene_id in first_line:
                message = f"duplicate {scene.scene_id!r} (first on line {first_line[scene.scene_id]})"
                raise SceneFormatError(path, number, "scene_id", message)
            first_line[scene.scene_id] = number
            scenes.append(scene)
    return scenes


def write_scenes(path: str | Path, scenes: Iterable[Scene]) -> None:
    """Write scenes atomically (temporary file, then ``os.replace``); relative paths are rebased onto
    the new file's directory so they keep pointing at the same files."""
    path = Path(path)
    directory = path.parent
    text = "".join(json.dumps(scene.to_record(relative_to=directory), ensure_ascii=False) + "\n" for scene in scenes)
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
    handle, temporary = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def lift_scenes(path: str | Path, *, decimals: int = 4) -> Iterator[dict[str, Any]]:
    """Lift every object with a ``bbox_2d`` or ``mask`` in every scene that has a depth map.

    Yields ``{scene_id, object_index, name, center_3d, size_3d, n_points}`` (floats rounded to
    ``decimals``, 0.1 mm by default) per object, via ``region3d.lift_region`` with the scene's ``up``.
    An object that cannot be lifted -- including every object of a scene whose depth file is missing or
    unreadable -- yields ``{scene_id, object_index, name, error}`` instead; the rest go on.
    An invalid scenes file raises ``SceneFormatError`` before anything is yielded.
    """
    for scene in load_scenes(path):
        targets = [index for index, obj in enumerate(scene.objects) if obj.bbox_2d is not None or obj.mask]
        if scene.depth is None or not targets:
            continue
        try:
            depth, depth_error = scene.load_depth(), None
        except (OSError, ValueError) as error:
            depth, depth_error = None, str(error)
        for index in targets:
            obj = scene.objects[index]
            record: dict[str, Any] = {"scene_id": scene.scene_id, "object_index": index, "name": obj.name}
            if depth_error is not None:
                record["error"] = depth_error
            else:
                record |= _lift_object(scene, depth, index, decimals)
            yield record


def _lift_object(scene: Scene, depth: np.ndarray, index: int, decimals: int) -> dict[str, Any]:
    obj = scene.objects[index]
    try:
        mask = scene.load_mask(index) if obj.mask else None
        lifted = lift_region(depth, scene.intrinsics, obj.bbox_2d, mask, up=scene.up)
    except (OSError, ValueError) as error:
        return {"error": str(error)}
    return lifted.to_dict(decimals)
