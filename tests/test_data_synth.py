"""Synthetic scenes: annotations agree with the rendered pixels and depth; rendering is deterministic."""

from __future__ import annotations

import filecmp
import json
import math
from dataclasses import replace

import cv2
import numpy as np
import pytest

from sr_real.cli import main
from sr_real_core.data.synth import SynthConfig, gravity_box, render_scene, synthesize
from sr_real_core.scenes import load_scenes

CONFIG = SynthConfig(num_scenes=3, seed=7, width=160, height=120, room_fraction=0.34)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth")
    return synthesize(CONFIG, out, progress=False)


@pytest.fixture(scope="module")
def scenes(rendered):
    return load_scenes(rendered)


def _box_axes(up, yaw):
    """Gravity-aligned box axes written out independently of the package (rows: width, down, depth)."""
    up = np.asarray(up, dtype=float) / np.linalg.norm(up)
    forward = np.array([0.0, 0.0, 1.0]) - up[2] * up
    forward /= np.linalg.norm(forward)
    down = -up
    right = np.cross(down, forward)
    return np.array([math.cos(yaw) * right + math.sin(yaw) * forward, down,
                     -math.sin(yaw) * right + math.cos(yaw) * forward])


def test_scenes_follow_the_contract(scenes, rendered):
    assert len(scenes) == CONFIG.num_scenes
    settings = set()
    for scene in scenes:
        settings.add(scene.extra["setting"])
        assert scene.depth and scene.up and len(scene.objects) >= 2
        names = [obj.name for obj in scene.objects]
        assert len(set(names)) == len(names)
        image = scene.load_image()
        assert image.shape == (CONFIG.height, CONFIG.width, 3) and image.std() > 10  # a real picture
        assert scene.load_depth().shape == (CONFIG.height, CONFIG.width)
    assert settings == {"tabletop", "room"}
    stats = json.loads((rendered.parent / "synth_stats.json").read_text())
    assert stats["objects"] == sum(len(s.objects) for s in scenes)


def test_masks_are_non_empty_and_bound_their_boxes(scenes):
    for scene in scenes:
        for index, obj in enumerate(scene.objects):
            rows, cols = np.nonzero(scene.load_mask(index))
            assert len(rows) >= CONFIG.min_mask_pixels
            assert obj.bbox_2d == [cols.min(), rows.min(), cols.max() + 1, rows.max() + 1]


def test_centres_project_inside_their_boxes(scenes):
    for scene in scenes:
        K = scene.intrinsics.K
        for obj in scene.objects:
            u, v, w = K @ np.asarray(obj.center_3d)
            x1, y1, x2, y2 = obj.bbox_2d
            assert x1 - 0.5 <= u / w <= x2 - 0.5 and y1 - 0.5 <= v / w <= y2 - 0.5, obj.name


def test_depth_inside_masks_lies_in_the_3d_boxes(scenes):
    for scene in scenes:
        depth = scene.load_depth()
        K_inv = np.linalg.inv(scene.intrinsics.K)
        for index, obj in enumerate(scene.objects):
            rows, cols = np.nonzero(scene.load_mask(index))
            z = depth[rows, cols]
            points = (K_inv @ np.stack([cols, rows, np.ones_like(cols)])).T * z[:, None]
            local = np.abs((points - obj.center_3d) @ _box_axes(scene.up, obj.yaw).T)
            inside = np.all(local <= np.asarray(obj.size_3d) / 2 + 0.02, axis=1)
            assert inside.mean() >= 0.95, obj.name


def test_depth_and_intrinsics_put_the_lowest_surface_on_the_floor(scenes):
    """Back-projected depth in world coordinates: nothing below the floor, and the floor at z = 0."""
    for scene in scenes:
        depth = scene.load_depth()
        rows, cols = np.nonzero(np.isfinite(depth))
        camera_points = (np.linalg.inv(scene.intrinsics.K) @ np.stack([cols, rows, np.ones_like(cols)])).T
        camera_points *= depth[rows, cols][:, None]
        camera_to_world = np.linalg.inv(np.asarray(scene.extra["world_to_camera"]))
        heights = camera_points @ camera_to_world[:3, :3].T[:, 2] + camera_to_world[2, 3]
        assert heights.min() > -0.01
        assert abs(np.percentile(heights, 1)) < 0.005
        world_up = np.asarray(scene.extra["world_to_camera"])[:3, :3] @ [0.0, 0.0, 1.0]
        assert np.allclose(scene.up, world_up, atol=1e-5)


def test_same_seed_gives_the_same_files_with_any_number_of_workers(rendered, tmp_path):
    again = synthesize(replace(CONFIG, workers=2), tmp_path, progress=False)
    assert again.read_bytes() == rendered.read_bytes()
    for sub in ("images", "depth", "masks"):
        comparison = filecmp.dircmp(rendered.parent / sub, tmp_path / sub)
        assert comparison.left_list == comparison.right_list
        _, mismatch, errors = filecmp.cmpfiles(rendered.parent / sub, tmp_path / sub, comparison.common_files,
                                               shallow=False)
        assert not mismatch and not errors


def test_a_scene_does_not_depend_on_the_scenes_before_it(scenes):
    alone = render_scene(CONFIG, 2)
    saved = cv2.cvtColor(cv2.imread(str(scenes[2].resolve(scenes[2].image))), cv2.COLOR_BGR2RGB)
    assert np.array_equal(alone.rgb, saved)
    assert [o["name"] for o in alone.record["objects"]] == [o.name for o in scenes[2].objects]


def test_gravity_box_recovers_a_rotated_box_under_a_pitched_camera():
    pitch = math.radians(35)
    up = np.array([0.0, -math.cos(pitch), -math.sin(pitch)])
    yaw, size, center = 0.3, np.array([0.4, 0.2, 0.1]), np.array([0.1, 0.3, 1.5])
    axes = _box_axes(up, yaw)
    corners = np.array([[x, y, z] for x in (-0.5, 0.5) for y in (-0.5, 0.5) for z in (-0.5, 0.5)]) * size
    points = center + corners @ axes
    heading = -axes[2]  # the depth axis: a quarter turn away from the width axis
    got_center, got_size, got_yaw = gravity_box(points, up, heading)
    assert np.allclose(got_center, center) and np.allclose(got_size, size) and math.isclose(got_yaw, yaw)


@pytest.mark.parametrize("field, value, message", [("min_objects", 1, "min_objects"), ("room_fraction", 1.5, "room_fraction"),
                                                   ("width", 8, "image size"), ("workers", 0, "workers")])
def test_bad_synth_config_is_refused(field, value, message):
    with pytest.raises(ValueError, match=message):
        SynthConfig(**{field: value})


def test_cli_synth_writes_a_scenes_file(tmp_path, capsys):
    assert main(["data", "synth", "--num-scenes", "1", "--size", "96x72", "--seed", "3", "--out", str(tmp_path)]) == 0
    scenes = load_scenes(tmp_path / "scenes.jsonl")
    assert scenes[0].intrinsics.width == 96 and str(tmp_path / "scenes.jsonl") in capsys.readouterr().out
