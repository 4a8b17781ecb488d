"""Tests for sr_real_core.scenes (the scene-record contract) and examples/make_tabletop.py."""

from __future__ import annotations

import importlib.util
import json
import os
import re
from pathlib import Path

import cv2
import numpy as np
import pytest

from sr_real_core.geometry import Intrinsics
from sr_real_core.scenes import Scene, SceneFormatError, SceneObject, lift_scenes, load_scenes, write_scenes

REPO = Path(__file__).resolve().parents[1]
TABLETOP = REPO / "examples" / "tabletop"

INTRINSICS = {"fx": 100.0, "fy": 100.0, "cx": 15.5, "cy": 11.5, "width": 32, "height": 24}


def record(**changes) -> dict:
    base = {
        "scene_id": "s1",
        "image": "rgb.png",
        "depth": "depth.png",
        "intrinsics": dict(INTRINSICS),
        "objects": [{"name": "cup", "bbox_2d": [8, 6, 16, 12]}],
    }
    return {key: value for key, value in (base | changes).items() if value is not None}


def write_lines(path: Path, *lines: object) -> Path:
    path.write_text("".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines))
    return path


@pytest.fixture
def scene_dir(tmp_path: Path) -> Path:
    """A 32x24 scene: a red image and a depth map with a 1 m patch in front of a 2 m wall."""
    rgb = np.zeros((24, 32, 3), np.uint8)
    rgb[..., 0] = 255
    cv2.imwrite(str(tmp_path / "rgb.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    depth = np.full((24, 32), 2000, np.uint16)
    depth[6:12, 8:16] = 1000
    cv2.imwrite(str(tmp_path / "depth.png"), depth)
    np.save(tmp_path / "depth.npy", depth.astype(np.float32) / 1000)
    return tmp_path


# --- Loading and validation -----------------------------------------------------------------------


def test_load_the_bundled_tabletop():
    [scene] = load_scenes(TABLETOP / "scenes.jsonl")
    assert scene.scene_id == "tabletop" and isinstance(scene.intrinsics, Intrinsics)
    assert [obj.name for obj in scene.objects] == ["red box", "green box", "blue box", "yellow box"]
    assert scene.up == pytest.approx([0.0, -np.cos(np.radians(30)), -0.5])
    assert scene.extra == {"source": "examples/make_tabletop.py: analytic ray casting, exact ground truth"}
    assert scene.load_image().shape == (240, 320, 3)
    depth = scene.load_depth()
    assert depth.shape == (240, 320) and 0.9 < np.nanmin(depth) and np.nanmax(depth) < 9.0
    assert scene.load_mask(0).sum() > 1000


def test_error_names_file_line_and_field(tmp_path):
    bad = record(objects=[{"name": "cup"}, {"name": "plate", "bbox_2d": [1, 2, 3]}])
    path = write_lines(tmp_path / "scenes.jsonl", record(scene_id="a"), "", bad)
    with pytest.raises(SceneFormatError) as error:
        load_scenes(path)
    assert str(error.value) == f"{path}:3: objects[1].bbox_2d: expected 4 numbers, got 3"
    assert (error.value.line, error.value.field) == (3, "objects[1].bbox_2d")


@pytest.mark.parametrize(
    ("line", "field", "message"),
    [
        (record(scene_id=None), "scene_id", "missing"),
        (record(scene_id=7), "scene_id", "non-empty string"),
        (record(image=None), "image", "missing"),
        (record(intrinsics=None), "intrinsics", "expected an object"),
        (record(intrinsics=INTRINSICS | {"fx": -1}), "intrinsics.fx", "positive"),
        (record(intrinsics=INTRINSICS | {"k1": 0.1}), "intrinsics.k1", "unknown field"),
        (record(intrinsics={"fx": 1}), "intrinsics.fy", "missing"),
        (record(depth_unit=0), "depth_unit", "positive"),
        (record(depth=None, depth_unit=0.001), "depth_unit", "without a depth map"),
        (record(up=[0, 0, 0]), "up", "not all zero"),
        (record(up=[0, 0, 1]), "up", "parallel to the optical axis"),
        (record(up=[0, -1]), "up", "expected 3 numbers, got 2"),
        (record(objects={"name": "cup"}), "objects", "expected a list"),
        (record(objects=["cup"]), "objects[0]", "expected a JSON object"),
        (record(objects=[{"bbox_2d": [0, 0, 1, 1]}]), "objects[0].name", "missing"),
        (record(objects=[{"name": "cup", "bbox_2d": [5, 0, 1, 1]}]), "objects[0].bbox_2d", "x1 < x2"),
        (record(objects=[{"name": "cup", "bbox_2d": [0, 0, "1", 1]}]), "objects[0].bbox_2d[2]", "number"),
        (record(objects=[{"name": "cup", "center_3d": [0, 0, True]}]), "objects[0].center_3d[2]", "number"),
        (record(objects=[{"name": "cup", "size_3d": [0.1, -0.1, 0.1]}]), "objects[0].size_3d", "non-negative"),
        (record(objects=[{"name": "cup", "yaw": "north"}]), "objects[0].yaw", "number"),
        (record(objects=[{"name": "cup", "mask": 3}]), "objects[0].mask", "string"),
        (
            '{"scene_id": "s1", "image": "a.png", "intrinsics": '
            '{"fx": NaN, "fy": 1, "cx": 1, "cy": 1, "width": 2, "height": 2}}',
            "intrinsics.fx",
            "finite",
        ),
        (["not", "an", "object"], "record", "expected a JSON object"),
    ],
)
def test_validation_errors(tmp_path, line, field, message):
    path = write_lines(tmp_path / "scenes.jsonl", record(scene_id="first"), line)
    with pytest.raises(SceneFormatError, match=f"^{re.escape(str(path))}:2: {re.escape(field)}: .*{message}") as error:
        load_scenes(path)
    assert error.value.field == field


def test_invalid_json_and_duplicate_ids(tmp_path):
    path = write_lines(tmp_path / "scenes.jsonl", record(), '{"scene_id": "s2", "image": ')
    with pytest.raises(SceneFormatError, match=rf"^{path}:2: invalid JSON: .*\(column \d+\)"):
        load_scenes(path)
    path = write_lines(tmp_path / "scenes.jsonl", record(), record())
    with pytest.raises(SceneFormatError, match="2: scene_id: duplicate 's1' \\(first on line 1\\)"):
        load_scenes(path)


# --- Writing --------------------------------------------------------------------------------------


def test_round_trip_keeps_extra_fields_untouched(tmp_path):
    extra_scene = {"question": "Is the cup left of the plate?", "tags": ["kitchen", {"nested": [1, 2.5, None]}]}
    extra_object = {"category_id": 47, "score": 0.93, "note": "üñíçødé"}
    original = record(
        up=[0, -0.9, -0.3],
        depth_unit=0.001,
        objects=[
            {"name": "cup", "bbox_2d": [8, 6, 16, 12], "center_3d": [0.1, 0.0, 1.0], "size_3d": [0.1, 0.1, 0.1],
             "yaw": 0.5, "mask": "masks/cup.png"} | extra_object,
            {"name": "plate"},
        ],
    ) | extra_scene  # fmt: skip
    path = write_lines(tmp_path / "scenes.jsonl", original)
    scenes = load_scenes(path)
    assert scenes[0].extra == extra_scene and scenes[0].objects[0].extra == extra_object
    write_scenes(tmp_path / "again.jsonl", scenes)
    assert load_scenes(tmp_path / "again.jsonl") == scenes
    rewritten = json.loads((tmp_path / "again.jsonl").read_text())
    assert rewritten == original | {"intrinsics": INTRINSICS}


def test_write_rebases_relative_paths(scene_dir):
    scenes = load_scenes(write_lines(scene_dir / "scenes.jsonl", record()))
    (scene_dir / "sub").mkdir()
    write_scenes(scene_dir / "sub" / "copy.jsonl", scenes)
    [copy] = load_scenes(scene_dir / "sub" / "copy.jsonl")
    assert copy.image == "../rgb.png"
    assert copy.resolve(copy.image).resolve() == (scene_dir / "rgb.png").resolve()
    assert copy.load_image()[0, 0].tolist() == [255, 0, 0]


def test_write_is_atomic(tmp_path):
    path = write_lines(tmp_path / "scenes.jsonl", record())
    os.chmod(path, 0o640)
    before = path.read_text()
    [scene] = load_scenes(path)
    scene.extra["unserialisable"] = object()
    with pytest.raises(TypeError):
        write_scenes(path, [scene])
    assert path.read_text() == before and sorted(p.name for p in tmp_path.iterdir()) == ["scenes.jsonl"]
    del scene.extra["unserialisable"]
    scene.objects.append(SceneObject(name="plate", bbox_2d=[0, 0, 4, 4]))
    write_scenes(path, [scene])
    assert [obj.name for obj in load_scenes(path)[0].objects] == ["cup", "plate"]
    assert path.stat().st_mode & 0o777 == 0o640 and sorted(p.name for p in tmp_path.iterdir()) == ["scenes.jsonl"]


def test_scene_built_in_code_writes_like_a_loaded_one(tmp_path):
    scene = Scene(scene_id="code", image="rgb.png", intrinsics=Intrinsics.from_dict(INTRINSICS))
    write_scenes(tmp_path / "scenes.jsonl", [scene])
    assert json.loads((tmp_path / "scenes.jsonl").read_text()) == {
        "scene_id": "code", "image": "rgb.png", "intrinsics": INTRINSICS, "objects": [],
    }  # fmt: skip


# --- Images, depth, lifting ---------------------------------------------------------------------------


def test_load_image_is_rgb_and_depth_units(scene_dir):
    scenes = load_scenes(
        write_lines(
            scene_dir / "scenes.jsonl",
            record(scene_id="png"),
            record(scene_id="npy", depth="depth.npy"),
            record(scene_id="tum", depth_unit=0.0002),
            record(scene_id="none", depth=None),
        )
    )
    assert scenes[0].load_image()[5, 5].tolist() == [255, 0, 0]
    assert scenes[0].load_depth()[0, 0] == pytest.approx(2.0)
    assert scenes[1].load_depth()[0, 0] == pytest.approx(2.0)
    assert scenes[2].load_depth()[0, 0] == pytest.approx(0.4)
    with pytest.raises(ValueError, match="'none': has no depth map"):
        scenes[3].load_depth()
    with pytest.raises(FileNotFoundError, match="'png': cannot read image"):
        Scene("png", "missing.png", scenes[0].intrinsics, base_dir=scene_dir).load_image()


def test_lift_scenes_records_and_errors(scene_dir):
    (scene_dir / "masks").mkdir()
    mask = np.zeros((24, 32), np.uint8)
    mask[6:12, 8:12] = 255
    cv2.imwrite(str(scene_dir / "masks" / "left.png"), mask)
    objects = [
        {"name": "cup", "bbox_2d": [6, 4, 18, 14]},
        {"name": "outside", "bbox_2d": [100, 100, 120, 120]},
        {"name": "no region", "center_3d": [0, 0, 1]},
        {"name": "left half", "mask": "masks/left.png"},
        {"name": "lost mask", "mask": "masks/missing.png"},
    ]
    path = write_lines(
        scene_dir / "scenes.jsonl",
        record(objects=objects),
        record(scene_id="gone", depth="missing.png"),
        record(scene_id="flat", depth=None),
    )
    results = list(lift_scenes(path))
    lifted_ids = [(r["scene_id"], r["object_index"]) for r in results]
    assert lifted_ids == [("s1", 0), ("s1", 1), ("s1", 3), ("s1", 4), ("gone", 0)]
    cup = results[0]
    assert cup["name"] == "cup" and cup["n_points"] == 48
    intrinsics = Intrinsics.from_dict(INTRINSICS)
    assert cup["center_3d"] == pytest.approx(intrinsics.backproject(11.5, 8.5, 1.0).tolist(), abs=1e-4)
    assert "lies outside the 32x24 image" in results[1]["error"] and "center_3d" not in results[1]
    assert results[2]["center_3d"] == pytest.approx(intrinsics.backproject(9.5, 8.5, 1.0).tolist(), abs=1e-4)
    assert "cannot read mask" in results[3]["error"]
    assert results[4]["error"].startswith("scene 'gone': depth file not found")
    json.dumps(results)


def test_lift_scenes_on_the_tabletop_matches_the_truth():
    [scene] = load_scenes(TABLETOP / "scenes.jsonl")
    lifted = list(lift_scenes(TABLETOP / "scenes.jsonl"))
    assert len(lifted) == 4
    for result, obj in zip(lifted, scene.objects, strict=True):
        assert result["name"] == obj.name and "error" not in result
        assert np.linalg.norm(np.subtract(result["center_3d"], obj.center_3d)) < 0.015


# --- The bundled example generator --------------------------------------------------------------------


def rounded(value: object) -> object:
    """JSON data with floats rounded to 5 decimals, for comparisons across floating-point platforms."""
    if isinstance(value, float):
        return round(value, 5)
    if isinstance(value, list):
        return [rounded(item) for item in value]
    if isinstance(value, dict):
        return {key: rounded(item) for key, item in value.items()}
    return value



def test_make_tabletop_reproduces_the_bundled_files(tmp_path):
    spec = importlib.util.spec_from_file_location("make_tabletop", REPO / "examples" / "make_tabletop.py")
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    generator.main(tmp_path)
    bundled_record = json.loads((TABLETOP / "scenes.jsonl").read_text())
    fresh_record = json.loads((tmp_path / "scenes.jsonl").read_text())
    assert rounded(fresh_record) == rounded(bundled_record)
    # Other platforms' floating point may flip a rounding here and there, hence the small slack.
    for name in ["rgb.png", "depth.png", *(obj["mask"] for obj in bundled_record["objects"])]:
        fresh = cv2.imread(str(tmp_path / name), cv2.IMREAD_UNCHANGED).astype(int)
        bundled = cv2.imread(str(TABLETOP / name), cv2.IMREAD_UNCHANGED).astype(int)
        assert fresh.shape == bundled.shape and np.count_nonzero(fresh != bundled) <= 5, name
    total_bytes = sum(path.stat().st_size for path in TABLETOP.rglob("*") if path.is_file())
    assert total_bytes < 300_000
