"""Generate the bundled tabletop example: an analytic RGB-D scene with exact ground truth.

Pure numpy ray casting, deterministic, no renderer. A floor, a back wall and four axis-aligned boxes
standing on the floor, seen by a 320x240 pinhole camera 1.2 m above the floor pitched 30 degrees down.

Writes into ``examples/tabletop/`` (or the directory given as the first argument):
  rgb.png        flat colours with Lambertian shading
  depth.png      uint16 millimetres (z-depth, 0 = no hit)
  masks/*.png    visible pixels of each box (8-bit, 255 = object)
  scenes.jsonl   one scene record (see sr_real_core.scenes) with exact center_3d / size_3d in the camera
                 frame, bbox_2d = tight box of the visible pixels [x1, y1, x2 + 1, y2 + 1], and ``up``.

World frame used here only: x right, y forward (horizontal), z up; the floor is z = 0.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import cv2
import numpy as np

WIDTH, HEIGHT = 320, 240
FOCAL = 300.0
CAMERA_HEIGHT = 1.2
PITCH_DOWN = math.radians(30.0)
WALL_DISTANCE = 4.0  # back wall: the plane y = 4 m
LIGHT = np.array([0.4, -0.6, 1.0]) / np.linalg.norm([0.4, -0.6, 1.0])  # towards the light, world frame

# name, footprint centre (x, y), size (x, y, z) in metres, colour (RGB)
BOXES = (
    ("red box", (-0.45, 1.7), (0.30, 0.25, 0.40), (200, 40, 40)),
    ("green box", (0.1, 2.35), (0.50, 0.40, 0.25), (40, 170, 60)),
    ("blue box", (0.55, 1.55), (0.15, 0.15, 0.60), (40, 70, 200)),
    ("yellow box", (-0.35, 3.1), (0.60, 0.30, 0.50), (220, 190, 40)),
)
FLOOR_COLOURS = ((150, 150, 150), (120, 120, 120))  # 0.5 m checkerboard
WALL_COLOUR = (215, 205, 185)


def camera_rotation() -> np.ndarray:
    """Rows are the camera axes (OpenCV: right, down, forward) expressed in the world frame."""
    c, s = math.cos(PITCH_DOWN), math.sin(PITCH_DOWN)
    return np.array([[1.0, 0.0, 0.0], [0.0, -s, -c], [0.0, c, -s]])


def intrinsics_record() -> dict:
    return {"fx": FOCAL, "fy": FOCAL, "cx": (WIDTH - 1) / 2, "cy": (HEIGHT - 1) / 2, "width": WIDTH, "height": HEIGHT}


def _ray_directions(rotation: np.ndarray) -> np.ndarray:
    """World-frame ray per pixel, scaled so its camera-frame z is 1: ray parameter t = z-depth."""
    v, u = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float64)
    normalized = np.stack([(u - (WIDTH - 1) / 2) / FOCAL, (v - (HEIGHT - 1) / 2) / FOCAL, np.ones_like(u)], -1)
    return normalized @ rotation


def _intersect_box(origin: np.ndarray, rays: np.ndarray, low: np.ndarray, high: np.ndarray):
    """Slab test: entry distance (inf on a miss) and the outward normal of the entry face."""
    with np.errstate(divide="ignore", invalid="ignore"):
        t_low, t_high = (low - origin) / rays, (high - origin) / rays
    t_entry_axes = np.fmin(t_low, t_high)
    t_entry = np.nanmax(t_entry_axes, axis=-1)
    t_exit = np.nanmin(np.fmax(t_low, t_high), axis=-1)
    hit = (t_entry <= t_exit) & (t_entry > 0)
    axis = np.nanargmax(t_entry_axes, axis=-1)
    normal = np.zeros_like(rays)
    np.put_along_axis(normal, axis[..., None], -np.sign(np.take_along_axis(rays, axis[..., None], -1)), -1)
    return np.where(hit, t_entry, np.inf), normal


def render() -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict]]:
    """RGB uint8, depth in metres (float64), object-id map (-1 = none) and the object records."""
    rotation = camera_rotation()
    origin = np.array([0.0, 0.0, CAMERA_HEIGHT])
    rays = _ray_directions(rotation)
    with np.errstate(divide="ignore"):
        t_floor = np.where(rays[..., 2] < 0, -CAMERA_HEIGHT / rays[..., 2], np.inf)
        t_wall = np.where(rays[..., 1] > 0, WALL_DISTANCE / rays[..., 1], np.inf)
    depth = np.minimum(t_floor, t_wall)
    normal = np.where((t_floor <= t_wall)[..., None], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0])
    hit_floor = origin + t_floor[..., None] * rays
    checker = (np.floor(hit_floor[..., 0] / 0.5) + np.floor(hit_floor[..., 1] / 0.5)).astype(int) % 2
    albedo = np.where((t_floor <= t_wall)[..., None], np.array(FLOOR_COLOURS)[checker], WALL_COLOUR).astype(float)
    object_id = np.full((HEIGHT, WIDTH), -1)
    for index, (_, (x, y), size, colour) in enumerate(BOXES):
        centre = np.array([x, y, size[2] / 2])
        t_box, box_normal = _intersect_box(origin, rays, centre - np.array(size) / 2, centre + np.array(size) / 2)
        nearer = t_box < depth
        depth = np.where(nearer, t_box, depth)
        normal = np.where(nearer[..., None], box_normal, normal)
        albedo = np.where(nearer[..., None], colour, albedo)
        object_id = np.where(nearer, index, object_id)
    shading = 0.35 + 0.65 * np.clip(normal @ LIGHT, 0.0, 1.0)
    rgb = np.clip(np.round(albedo * shading[..., None]), 0, 255).astype(np.uint8)
    depth = np.where(np.isfinite(depth), depth, 0.0)
    return rgb, depth, object_id, [_object_record(i, object_id, rotation, origin) for i in range(len(BOXES))]


def _object_record(index: int, object_id: np.ndarray, rotation: np.ndarray, origin: np.ndarray) -> dict:
    name, (x, y), (size_x, size_y, size_z), _ = BOXES[index]
    rows, cols = np.nonzero(object_id == index)
    centre_camera = rotation @ (np.array([x, y, size_z / 2]) - origin)
    return {
        "name": name,
        "bbox_2d": [int(cols.min()), int(rows.min()), int(cols.max()) + 1, int(rows.max()) + 1],
        "center_3d": [round(float(c), 6) for c in centre_camera],
        # Gravity-aligned extents in the scene-record order: across the view, along up, along the view.
        "size_3d": [size_x, size_z, size_y],
        "yaw": 0.0,
        "mask": f"masks/{name.replace(' ', '_')}.png",
    }


def main(out_dir: Path) -> None:
    rgb, depth, object_id, objects = render()
    (out_dir / "masks").mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out_dir / "rgb.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(out_dir / "depth.png"), np.round(depth * 1000.0).astype(np.uint16))
    for index, record in enumerate(objects):
        cv2.imwrite(str(out_dir / record["mask"]), np.where(object_id == index, 255, 0).astype(np.uint8))
    scene = {
        "scene_id": "tabletop",
        "image": "rgb.png",
        "depth": "depth.png",
        "depth_unit": 0.001,
        "up": [round(float(c), 12) for c in camera_rotation() @ np.array([0.0, 0.0, 1.0])],
        "intrinsics": intrinsics_record(),
        "objects": objects,
        "source": "examples/make_tabletop.py: analytic ray casting, exact ground truth",
    }
    (out_dir / "scenes.jsonl").write_text(json.dumps(scene) + "\n")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent / "tabletop")
