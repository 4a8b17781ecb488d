"""Synthetic RGB-D scenes rendered with pybullet's TinyRenderer and annotated exactly from the simulator.

One scene, all of its randomness drawn from a generator seeded with ``(seed, index)`` (so a scene does not
depend on which other scenes are rendered, in which order, or by how many workers):

1. Layout. A *table-top* (a table, 3-8 small objects clustered on it, some stacked or in a tray) or a
   *room* (floor, walls, tables with small objects on them, large objects on the floor). Object kinds,
   sizes (``globalScaling``), colours (palette ``rgbaColor``), yaw, pose and clutter (spacing) vary.
2. Physics. Objects are dropped just above their support and the simulation is stepped until they rest.
3. Camera and light: pose, height, pitch, vertical FOV; light direction, colour, ambient/diffuse/specular
   coefficients, shadows on or off.
4. Render RGB, the OpenGL z-buffer (-> metric z-depth ``far*near / (far - (far-near)*zbuf)``) and the
   segmentation buffer (-> instance masks).
5. Annotate every object in the OpenCV camera frame (+x right, +y down, +z forward):

   - ``center_3d``/``size_3d``/``yaw``: the gravity-aligned oriented box of the object's *visual mesh*
     (the triangles TinyRenderer draws, read from the URDF's OBJ files and primitives). Amodal: the
     whole object, hidden parts included. Its axes are those of ``geometry.gravity_frame(up)`` turned by
     ``yaw`` about the vertical: size = [across, height, along the view], yaw in (-45, 45] degrees (a
     box's heading is only defined modulo 90 degrees). Heading = the object's own x axis on the floor.
   - ``bbox_2d``: the tight box of the visible mask, pixel-edge coordinates ``[x1, y1, x2+1, y2+1]``.
   - ``up``: world up in the camera frame. Intrinsics: ``fy = (H/2) / tan(fov/2)``, ``fx = fy`` (square
     pixels), principal point ``(W/2, H/2 - 1)`` in pixel-centre coordinates (TinyRenderer's sampling
     offset, measured; see ``Camera.intrinsics``).

Kept objects pass three checks (dropped objects stay in the image, unannotated; names stay unique over
*all* objects, so a dropped one never makes a question ambiguous):

- visibility: visible mask pixels / pixels of the object's full unoccluded, unclipped silhouette (its
  triangles rasterised alone) >= ``min_visible_fraction`` (0.4: mostly occluded or out of frame -> drop),
  and at least ``min_mask_pixels`` (30) visible pixels;
- projection: the 3D centre projects inside the 2D box;
- depth: >= ``DEPTH_AGREEMENT`` (95%) of the mask's back-projected depth points lie inside the 3D box grown
  by ``DEPTH_TOLERANCE_M`` (2 cm) -- so masks, depth, intrinsics and boxes agree with each other.

A scene keeps at least ``MIN_OBJECTS_PER_SCENE`` annotated objects; a layout that ends with fewer is
redrawn, up to ``MAX_LAYOUT_ATTEMPTS`` (6) times, from the same generator (so still deterministic).
"""

from __future__ import annotations

import json
import math
import multiprocessing
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pybullet as p
from tqdm import tqdm

from sr_real_core.data import assets
from sr_real_core.data.files import write_image
from sr_real_core.geometry import Intrinsics, gravity_frame
from sr_real_core.scenes import Scene, write_scenes

DEPTH_TOLERANCE_M = 0.02
DEPTH_AGREEMENT = 0.95
MIN_OBJECTS_PER_SCENE = 2
MAX_LAYOUT_ATTEMPTS = 6
PLACEMENT_ATTEMPTS = 30
NEAR_M, FAR_M = 0.05, 25.0
DEPTH_UNIT = 0.001  # depth PNGs hold uint16 millimetres
SETTLE_CHECK_EVERY = 20
SETTLED_SPEED = 0.01  # m/s and rad/s
DECIMALS = 4

WALL_COLOURS = ((0.85, 0.82, 0.75, 1.0), (0.75, 0.78, 0.8, 1.0), (0.7, 0.8, 0.72, 1.0), (0.9, 0.88, 0.85, 1.0))
FLOOR_TEXTURES = (None, "table/table.png", "checker_grid.jpg", "tray/tray.jpg")


@dataclass
class SynthConfig:
    """What `sr-real data synth` renders. Defaults give ~320x240 scenes with 3-8 objects each."""

    num_scenes: int = 10
    seed: int = 0
    width: int = 320
    height: int = 240
    room_fraction: float = 0.3  # share of room scenes; the rest are table-tops
    min_objects: int = 3
    max_objects: int = 8
    stack_probability: float = 0.2
    min_visible_fraction: float = 0.4
    min_mask_pixels: int = 30
    settle_steps: int = 480  # at most 2 s of simulated time at 240 Hz
    workers: int = 1

    def __post_init__(self) -> None:
        if self.num_scenes < 0:
            raise ValueError(f"num_scenes must be >= 0, got {self.num_scenes}")
        if self.width < 16 or self.height < 16:
            raise ValueError(f"image size must be at least 16x16, got {self.width}x{self.height}")
        if not 0.0 <= self.room_fraction <= 1.0:
            raise ValueError(f"room_fraction must lie in [0, 1], got {self.room_fraction}")
        if not MIN_OBJECTS_PER_SCENE <= self.min_objects <= self.max_objects:
            raise ValueError(
                f"need {MIN_OBJECTS_PER_SCENE} <= min_objects <= max_objects, got {self.min_objects}, {self.max_objects}"
            )
        if self.max_objects > len(assets.PALETTE):
            raise ValueError(f"max_objects must be <= {len(assets.PALETTE)} (one palette colour each)")
        if self.workers < 1:
            raise ValueError(f"workers must be >= 1, got {self.workers}")


@dataclass(frozen=True)
class Camera:
    eye: tuple[float, float, float]
    target: tuple[float, float, float]
    fov_deg: float  # vertical
    width: int
    height: int

    def view_matrix(self) -> list[float]:
        return p.computeViewMatrix(self.eye, self.target, (0.0, 0.0, 1.0))

    def projection_matrix(self) -> list[float]:
        return p.computeProjectionMatrixFOV(self.fov_deg, self.width / self.height, NEAR_M, FAR_M)

    def intrinsics(self) -> Intrinsics:
        focal = (self.height / 2.0) / math.tan(math.radians(self.fov_deg) / 2.0)
        # TinyRenderer samples pixel (u, v) at the ray of pixel-centre coordinates (u - 0.5, v + 0.5) of the
        # OpenGL frustum, so its principal point is (W/2, H/2 - 1), not ((W-1)/2, (H-1)/2); checked by
        # back-projecting rendered walls and floor, which then land on their planes to 0.1 mm.
        return Intrinsics(focal, focal, self.width / 2.0, self.height / 2.0 - 1.0, self.width, self.height)

    def world_to_camera(self) -> np.ndarray:
        """4x4 world -> OpenCV camera: OpenGL's view matrix with y and z flipped (GL looks down -z, +y up)."""
        view_gl = np.asarray(self.view_matrix()).reshape(4, 4).T  # pybullet matrices are column-major
        return np.diag([1.0, -1.0, -1.0, 1.0]) @ view_gl


@dataclass
class _Placed:
    body: int
    noun: str
    colour: str | None
    asset: str
    name: str = ""


@dataclass
class _Layout:
    setting: str
    objects: list[_Placed] = field(default_factory=list)
    camera: Camera | None = None


# ------------------------------------------------------------------------------------------------ layout


class _Builder:
    """Places objects in one pybullet client, drawing every choice from one generator."""

    def __init__(self, client: int, rng: np.random.Generator, config: SynthConfig):
        self.client, self.rng, self.config = client, rng, config
        self.layout = _Layout(setting="")
        self.footprints: list[tuple[float, float, float]] = []  # (x, y, radius) of floor/table objects
        self.spacing = rng.uniform(0.6, 1.1)  # < 1 lets footprints overlap a little: clutter and occlusion

    # -- assets
    def load(self, asset: assets.Asset, position, yaw: float, scale_gain: float = 1.0) -> int:
        rng = self.rng
        if asset.upright:
            orientation = p.getQuaternionFromEuler((0.0, 0.0, yaw))
        else:  # rests on any face: a quarter turn about x or y, or none
            tilt = rng.choice([0.0, math.pi / 2])
            roll, pitch = (tilt, 0.0) if rng.random() < 0.5 else (0.0, tilt)
            orientation = p.getQuaternionFromEuler((roll, pitch, yaw))
        scale = rng.uniform(*asset.scale) * scale_gain
        urdf = assets.urdf_path(asset, rng)
        body = p.loadURDF(
            str(assets.DATA_DIR / urdf),
            position,
            orientation,
            useFixedBase=asset.fixed,
            globalScaling=scale,
            physicsClientId=self.client,
        )
        colour = asset.colour
        if colour is None:
            used = {o.colour for o in self.layout.objects if o.noun == asset.noun}
            colour = str(rng.choice([c for c in assets.PALETTE if c not in used]))
            for shape in p.getVisualShapeData(body, physicsClientId=self.client):
                p.changeVisualShape(body, shape[1], rgbaColor=assets.PALETTE[colour], physicsClientId=self.client)
        self.layout.objects.append(_Placed(body, asset.noun, colour, urdf))
        return body

    def aabb(self, body: int) -> tuple[np.ndarray, np.ndarray]:
        links = range(-1, p.getNumJoints(body, physicsClientId=self.client))
        boxes = [p.getAABB(body, link, physicsClientId=self.client) for link in links]
        return np.min([b[0] for b in boxes], axis=0), np.max([b[1] for b in boxes], axis=0)

    def drop(self, asset: assets.Asset, xy, bottom_z: float, scale_gain: float = 1.0, stacked: bool = False) -> int | None:
        """Load ``asset`` with its lowest point just above ``bottom_z`` at ``xy``; None (and removed) if it
        would overlap an earlier footprint."""
        body = self.load(asset, (xy[0], xy[1], bottom_z + 2.0), self.rng.uniform(-math.pi, math.pi), scale_gain)
        low, high = self.aabb(body)
        radius = 0.5 * float(np.max(high[:2] - low[:2]))
        if not stacked and any(math.dist(xy, f[:2]) < (radius + f[2]) * self.spacing for f in self.footprints):
            p.removeBody(body, physicsClientId=self.client)
            self.layout.objects.pop()
            return None
        position, orientation = p.getBasePositionAndOrientation(body, physicsClientId=self.client)
        lift = bottom_z + (0.0 if asset.fixed else 0.003) - low[2]
        p.resetBasePositionAndOrientation(
            body, (position[0], position[1], position[2] + lift), orientation, physicsClientId=self.client
        )
        if not stacked:
            self.footprints.append((xy[0], xy[1], radius))
        return body

    def pick_assets(self, catalogue: tuple[assets.Asset, ...], count: int) -> list[assets.Asset]:
        """``count`` assets; an asset with its own colour (textured) at most once, so names stay unique."""
        chosen: list[assets.Asset] = []
        for _ in range(count):
            used = {o.noun for o in self.layout.objects} | {a.noun for a in chosen}
            options = [a for a in catalogue if a.colour is None or a.noun not in used]
            chosen.append(options[int(self.rng.integers(len(options)))])
        return chosen

    def scatter(self, catalogue, count: int, sample_xy, bottom_z: float, scale_gain: float = 1.0) -> None:
        """Drop ``count`` objects at points from ``sample_xy()``, stacking some on earlier supports."""
        supports: list[int] = []
        for asset in self.pick_assets(catalogue, count):
            body = None
            if supports and self.rng.random() < self.config.stack_probability:
                base = supports[int(self.rng.integers(len(supports)))]
                low, high = self.aabb(base)
                centre = 0.5 * (low[:2] + high[:2]) + self.rng.uniform(-0.15, 0.15, 2) * (high[:2] - low[:2])
                body = self.drop(asset, centre, float(high[2]) + 0.005, scale_gain, stacked=True)
            if body is None:
                body = self.drop_somewhere(asset, sample_xy, bottom_z, scale_gain)
            if body is not None and asset.support:
                supports.append(body)

    def drop_somewhere(self, asset: assets.Asset, sample_xy, bottom_z: float, scale_gain: float = 1.0) -> int | None:
        """Drop at the first of up to ``PLACEMENT_ATTEMPTS`` sampled points where it overlaps nothing."""
        for _ in range(PLACEMENT_ATTEMPTS):
            body = self.drop(asset, sample_xy(), bottom_z, scale_gain)
            if body is not None:
                return body
        return None

    # -- scene shells
    def floor_and_walls(self, half_size: float, walls: int) -> None:
        rng, client = self.rng, self.client
        floor = p.loadURDF(str(assets.DATA_DIR / "plane.urdf"), physicsClientId=client)
        texture = FLOOR_TEXTURES[int(rng.integers(len(FLOOR_TEXTURES)))]
        tint = (*rng.uniform(0.6, 1.0, 3), 1.0)
        if texture is not None:
            texture_id = p.loadTexture(str(assets.DATA_DIR / texture), physicsClientId=client)
            p.changeVisualShape(floor, -1, textureUniqueId=texture_id, rgbaColor=tint, physicsClientId=client)
        else:
            p.changeVisualShape(floor, -1, rgbaColor=tint, physicsClientId=client)
        colour = WALL_COLOURS[int(rng.integers(len(WALL_COLOURS)))]
        height = 2.6
        for side in range(walls):  # +y, +x, -x, -y
            along_x = side in (0, 3)
            extents = (half_size, 0.05, height / 2) if along_x else (0.05, half_size, height / 2)
            sign = 1.0 if side in (0, 1) else -1.0
            position = (0.0, sign * half_size, height / 2) if along_x else (sign * half_size, 0.0, height / 2)
            shape = p.createVisualShape(p.GEOM_BOX, halfExtents=extents, rgbaColor=colour, physicsClientId=client)
            collision = p.createCollisionShape(p.GEOM_BOX, halfExtents=extents, physicsClientId=client)
            p.createMultiBody(0.0, collision, shape, position, physicsClientId=client)

    def tabletop(self) -> None:
        rng, config = self.rng, self.config
        self.layout.setting = "tabletop"
        # Walls at least 2.5 m out: beyond the farthest camera (about 2.1 m from the table centre).
        self.floor_and_walls(half_size=float(rng.uniform(2.5, 3.5)), walls=int(rng.integers(0, 4)))
        table_asset = assets.TABLES[int(rng.integers(len(assets.TABLES)))]
        table = self.drop(table_asset, (0.0, 0.0), 0.0, scale_gain=1.4 if table_asset.noun == "table" else 1.3)
        low, high = self.aabb(table)
        self.footprints.clear()  # objects go on the table, not beside it
        top = float(high[2])
        # The objects gather in a cluster (radius 0.2-0.45 m) somewhere on the table, so a camera can frame it.
        margin = 0.08
        half = np.maximum((high[:2] - low[:2]) / 2 - margin, 0.05)
        radius = float(min(rng.uniform(0.2, 0.45), half.min()))
        centre = rng.uniform(-(half - radius), half - radius) if (half > radius).all() else np.zeros(2)

        def sample_xy():
            while True:
                offset = rng.uniform(-radius, radius, 2)
                if np.hypot(*offset) <= radius:
                    return centre + offset

        count = int(rng.integers(config.min_objects, config.max_objects + 1))
        self.scatter(assets.TABLETOP_ASSETS, count, sample_xy, top)
        fov = float(rng.uniform(45.0, 70.0))
        distance = radius / math.tan(math.radians(fov) / 2) * rng.uniform(0.9, 1.5) + 0.1
        elevation = math.radians(rng.uniform(25.0, 65.0))
        azimuth = rng.uniform(-math.pi, math.pi)
        target = (float(centre[0]), float(centre[1]), top + 0.04)
        eye = (
            target[0] + distance * math.cos(elevation) * math.cos(azimuth),
            target[1] + distance * math.cos(elevation) * math.sin(azimuth),
            target[2] + distance * math.sin(elevation),
        )
        self.layout.camera = Camera(eye, target, fov, config.width, config.height)

    def room(self) -> None:
        rng, config = self.rng, self.config
        self.layout.setting = "room"
        half_size = 4.5
        self.floor_and_walls(half_size, walls=3)
        fov = float(rng.uniform(50.0, 75.0))
        half_hfov = math.atan(math.tan(math.radians(fov) / 2) * config.width / config.height)
        eye = np.array([rng.uniform(-1.5, 1.5), rng.uniform(-3.8, -2.8), rng.uniform(0.7, 1.8)])
        heading = math.pi / 2 + rng.uniform(-0.5, 0.5)
        forward, left = np.array([math.cos(heading), math.sin(heading)]), np.array([-math.sin(heading), math.cos(heading)])

        def sample_xy():  # inside the camera's view wedge on the floor, inside the room
            while True:
                depth = rng.uniform(1.8, 6.5)
                xy = eye[:2] + depth * forward + rng.uniform(-0.8, 0.8) * depth * math.tan(half_hfov) * left
                if np.all(np.abs(xy) < half_size - 0.6):
                    return xy

        for asset in self.pick_assets(assets.TABLES, int(rng.integers(0, 3))):
            table = self.drop_somewhere(asset, sample_xy, 0.0)
            if table is not None:
                low, high = self.aabb(table)

                def on_table(low=low, high=high):  # 10 cm in from the edges
                    return rng.uniform(low[:2] + 0.1, high[:2] - 0.1)

                self.scatter(assets.TABLETOP_ASSETS, int(rng.integers(0, 3)), on_table, float(high[2]), 1.6)
        placed = len(self.layout.objects)
        floor_count = max(0, min(max(int(rng.integers(2, 6)), config.min_objects - placed), config.max_objects - placed))
        self.scatter(assets.FLOOR_ASSETS, floor_count, sample_xy, 0.0)
        look = eye[:2] + rng.uniform(2.5, 4.0) * forward
        self.layout.camera = Camera(
            tuple(float(v) for v in eye), (float(look[0]), float(look[1]), float(rng.uniform(0.0, 0.7))),
            fov, config.width, config.height,
        )


def _assign_names(objects: list[_Placed], rng: np.random.Generator) -> None:
    """Unique names: a noun alone when it occurs once (sometimes with its colour), else colour + noun
    (instances of one noun always get distinct colours)."""
    counts = Counter(o.noun for o in objects)
    for placed in objects:
        with_colour = placed.colour is not None and (counts[placed.noun] > 1 or rng.random() < 0.5)
        placed.name = f"{placed.colour} {placed.noun}" if with_colour else placed.noun
    names = [o.name for o in objects]
    assert len(set(names)) == len(names), f"duplicate object names {names}"


def _settle(client: int, bodies: list[int], max_steps: int) -> None:
    for _ in range(0, max_steps, SETTLE_CHECK_EVERY):
        for _ in range(SETTLE_CHECK_EVERY):
            p.stepSimulation(physicsClientId=client)
        speeds = [np.abs(np.concatenate(p.getBaseVelocity(b, physicsClientId=client))).max() for b in bodies]
        if max(speeds, default=0.0) < SETTLED_SPEED:
            return


# ------------------------------------------------------------------------------------------- rendering


def _lighting(rng: np.random.Generator) -> dict[str, Any]:
    azimuth, elevation = rng.uniform(-math.pi, math.pi), rng.uniform(0.5, 1.4)
    direction = [math.cos(elevation) * math.cos(azimuth), math.cos(elevation) * math.sin(azimuth), math.sin(elevation)]
    return {
        "lightDirection": [round(v, 4) for v in direction],
        "lightColor": [round(float(v), 3) for v in rng.uniform(0.85, 1.0, 3)],
        "lightAmbientCoeff": round(float(rng.uniform(0.4, 0.75)), 3),
        "lightDiffuseCoeff": round(float(rng.uniform(0.35, 0.7)), 3),
        "lightSpecularCoeff": round(float(rng.uniform(0.0, 0.3)), 3),
        "shadow": int(rng.random() < 0.6),
    }


def _render(client: int, camera: Camera, lighting: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """RGB (H, W, 3) uint8, metric z-depth (H, W) float32 metres (NaN = nothing hit), segmentation (H, W)."""
    width, height = camera.width, camera.height
    _, _, rgba, zbuffer, segmentation = p.getCameraImage(
        width, height, camera.view_matrix(), camera.projection_matrix(),
        renderer=p.ER_TINY_RENDERER, physicsClientId=client, **lighting,
    )
    rgb = np.asarray(rgba, dtype=np.uint8).reshape(height, width, 4)[..., :3]
    zbuffer = np.asarray(zbuffer, dtype=np.float64).reshape(height, width)
    depth = FAR_M * NEAR_M / (FAR_M - (FAR_M - NEAR_M) * zbuffer)
    depth[zbuffer >= 1.0 - 1e-7] = np.nan
    return np.ascontiguousarray(rgb), depth.astype(np.float32), np.asarray(segmentation).reshape(height, width)


# ------------------------------------------------------------------------------------------- annotation


def _to_camera(world_to_camera: np.ndarray, points: np.ndarray) -> np.ndarray:
    return points @ world_to_camera[:3, :3].T + world_to_camera[:3, 3]


def _silhouette_pixels(uv: np.ndarray, faces: np.ndarray, width: int, height: int) -> int:
    """Pixel count of the rasterised triangles on an unclipped canvas (the object's full silhouette)."""
    low = np.floor(np.minimum(uv.min(axis=0), 0)).astype(int)
    high = np.ceil(np.maximum(uv.max(axis=0), (width, height))).astype(int)
    low, high = np.maximum(low, (-2 * width, -2 * height)), np.minimum(high, (3 * width, 3 * height))
    canvas = np.zeros((high[1] - low[1] + 1, high[0] - low[0] + 1), dtype=np.uint8)
    corners = np.rint(np.clip(uv, low, high) - low).astype(np.int32)  # pixel centres at integers
    for triangle in corners[faces]:
        cv2.fillConvexPoly(canvas, triangle, 1)
    return int(canvas.sum())


def _box_axes(up: np.ndarray, yaw: float) -> np.ndarray:
    """Rows: the box's width axis (gravity right turned by yaw towards forward), down, depth axis."""
    right, down, forward = gravity_frame(up)
    cos, sin = math.cos(yaw), math.sin(yaw)
    return np.array([cos * right + sin * forward, down, -sin * right + cos * forward])


def gravity_box(points_camera: np.ndarray, up: np.ndarray, heading_camera: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Centre (camera frame), size [width, height, depth] and yaw (radians) of the gravity-aligned box
    around ``points_camera`` whose width axis is the horizontal ``heading_camera`` turned by a multiple of
    90 degrees into (-45, 45] degrees from the gravity frame's right axis (``relations``' yaw convention)."""
    right, _, forward = gravity_frame(up)
    yaw = math.atan2(float(forward @ heading_camera), float(right @ heading_camera))
    yaw = (yaw + math.pi / 4) % (math.pi / 2) - math.pi / 4
    if yaw <= -math.pi / 4 + 1e-12:
        yaw += math.pi / 2
    axes = _box_axes(up, yaw)
    coordinates = points_camera @ axes.T
    low, high = coordinates.min(axis=0), coordinates.max(axis=0)
    return axes.T @ ((low + high) / 2), high - low, yaw


def _inside_box_fraction(points: np.ndarray, center: np.ndarray, size: np.ndarray, axes: np.ndarray) -> float:
    local = np.abs((points - center) @ axes.T)
    return float(np.mean(np.all(local <= size / 2 + DEPTH_TOLERANCE_M, axis=1)))


def _annotate(client: int, placed: _Placed, camera: Camera, depth: np.ndarray, segmentation: np.ndarray,
              config: SynthConfig) -> tuple[dict[str, Any], np.ndarray] | str:
    """(object record without mask path, mask) for a kept object, else the reason it is dropped."""
    world_to_camera = camera.world_to_camera()
    intrinsics = camera.intrinsics()
    vertices, faces = assets.body_mesh(client, placed.body)
    points = _to_camera(world_to_camera, vertices)
    if points[:, 2].min() <= NEAR_M:
        return "behind or too close to the camera"
    mask = segmentation == placed.body
    visible = int(mask.sum())
    if visible < config.min_mask_pixels:
        return "too few visible pixels"
    uv = intrinsics.project(points)
    fraction = visible / max(_silhouette_pixels(uv, faces, camera.width, camera.height), 1)
    if fraction < config.min_visible_fraction:
        return "mostly occluded or out of frame"
    up = world_to_camera[:3, :3] @ np.array([0.0, 0.0, 1.0])
    yaw_world = assets.heading(client, placed.body)
    heading = world_to_camera[:3, :3] @ np.array([math.cos(yaw_world), math.sin(yaw_world), 0.0])
    center, size, yaw = gravity_box(points, up, heading)
    rows, cols = np.nonzero(mask)
    bbox = [int(cols.min()), int(rows.min()), int(cols.max()) + 1, int(rows.max()) + 1]
    u, v = intrinsics.project(center)
    if not (bbox[0] - 0.5 <= u <= bbox[2] - 0.5 and bbox[1] - 0.5 <= v <= bbox[3] - 0.5):
        return "centre projects outside its 2D box"
    valid = np.isfinite(depth[rows, cols])
    surface = intrinsics.backproject(cols[valid], rows[valid], depth[rows, cols][valid])
    if not valid.any() or _inside_box_fraction(surface, center, size, _box_axes(up, yaw)) < DEPTH_AGREEMENT:
        return "depth disagrees with the 3D box"
    record = {
        "name": placed.name,
        "bbox_2d": bbox,
        "center_3d": [round(float(c), DECIMALS) for c in center],
        "size_3d": [round(float(s), DECIMALS) for s in size],
        "yaw": round(yaw, DECIMALS),
        "noun": placed.noun,
        "colour": placed.colour,
        "asset": placed.asset,
        "visible_fraction": round(min(fraction, 1.0), 3),
    }
    return record, mask


# ---------------------------------------------------------------------------------------------- driving

_CLIENT: int | None = None


def _client() -> int:
    """This process's own headless pybullet server (one per worker process)."""
    global _CLIENT
    if _CLIENT is None:
        _CLIENT = p.connect(p.DIRECT)
    return _CLIENT


def _forget_client() -> None:
    """In a forked worker: drop the parent's connection, so the worker opens its own."""
    global _CLIENT
    _CLIENT = None


def scene_id(seed: int, index: int) -> str:
    return f"synth-s{seed}-{index:05d}"


@dataclass
class RenderedScene:
    """One scene in memory: arrays plus its scene record (object ``mask`` paths not yet assigned)."""

    scene_id: str
    rgb: np.ndarray
    depth: np.ndarray
    masks: list[np.ndarray]
    record: dict[str, Any]
    dropped: Counter


def render_scene(config: SynthConfig, index: int) -> RenderedScene:
    """Lay out, settle, render and annotate scene ``index`` of ``config.seed`` (deterministic)."""
    client = _client()
    rng = np.random.default_rng([config.seed, index])
    room = rng.random() < config.room_fraction
    dropped: Counter = Counter()
    for _ in range(MAX_LAYOUT_ATTEMPTS):
        p.resetSimulation(physicsClientId=client)
        p.setPhysicsEngineParameter(deterministicOverlappingPairs=1, physicsClientId=client)
        p.setGravity(0.0, 0.0, -9.81, physicsClientId=client)
        builder = _Builder(client, rng, config)
        builder.room() if room else builder.tabletop()
        layout = builder.layout
        _assign_names(layout.objects, rng)
        _settle(client, [o.body for o in layout.objects], config.settle_steps)
        lighting = _lighting(rng)
        rgb, depth, segmentation = _render(client, layout.camera, lighting)
        kept, masks = [], []
        for placed in layout.objects:
            result = _annotate(client, placed, layout.camera, depth, segmentation, config)
            if isinstance(result, str):
                dropped[result] += 1
                continue
            kept.append(result[0])
            masks.append(result[1])
        if len(kept) >= MIN_OBJECTS_PER_SCENE:
            break
        dropped["layout redrawn"] += 1
    camera = layout.camera
    world_to_camera = camera.world_to_camera()
    sid = scene_id(config.seed, index)
    record = {
        "scene_id": sid,
        "image": f"images/{sid}.png",
        "depth": f"depth/{sid}.png",
        "depth_unit": DEPTH_UNIT,
        "intrinsics": camera.intrinsics().to_dict(),
        "up": [round(float(v), 6) for v in world_to_camera[:3, 2]],
        "objects": kept,
        "source": "synth",
        "setting": layout.setting,
        "camera": {"eye": [round(v, 4) for v in camera.eye], "target": [round(v, 4) for v in camera.target],
                   "fov_deg": round(camera.fov_deg, 3)},
        "world_to_camera": np.round(world_to_camera, 6).tolist(),
        "lighting": lighting,
    }
    return RenderedScene(sid, rgb, depth, masks, record, dropped)


def _save(scene: RenderedScene, out_dir: Path) -> dict[str, Any]:
    """Write a scene's image, depth and masks; return its record with mask paths."""
    record = scene.record
    write_image(out_dir / record["image"], scene.rgb)
    millimetres = np.nan_to_num(scene.depth / DEPTH_UNIT, nan=0.0)
    write_image(out_dir / record["depth"], np.clip(np.rint(millimetres), 0, 65535).astype(np.uint16))
    for k, (obj, mask) in enumerate(zip(record["objects"], scene.masks)):
        obj["mask"] = f"masks/{scene.scene_id}-{k}.png"
        write_image(out_dir / obj["mask"], mask.astype(np.uint8) * 255)
    return record


def _render_and_save(job: tuple[SynthConfig, int, str]) -> tuple[dict[str, Any], Counter]:
    config, index, out_dir = job
    scene = render_scene(config, index)
    return _save(scene, Path(out_dir)), scene.dropped


SCENES_FILE = "scenes.jsonl"


def synthesize(config: SynthConfig, out_dir: str | Path, progress: bool = True) -> Path:
    """Render ``config.num_scenes`` scenes into ``out_dir`` (images/, depth/, masks/, scenes.jsonl,
    synth_stats.json); returns the scenes file. Parallel over ``config.workers`` processes."""
    out = Path(out_dir)
    for sub in ("images", "depth", "masks"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    jobs = [(config, index, str(out)) for index in range(config.num_scenes)]
    bar = tqdm(total=len(jobs), desc="synth", unit="scene", disable=not progress)
    records, dropped = [], Counter()
    if config.workers > 1:
        # fork starts workers in milliseconds (spawn re-imports everything, slower than rendering small
        # batches); each worker opens its own pybullet server.
        method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
        with multiprocessing.get_context(method).Pool(config.workers, initializer=_forget_client) as pool:
            for record, reasons in pool.imap(_render_and_save, jobs):
                records.append(record), dropped.update(reasons), bar.update()
    else:
        for job in jobs:
            record, reasons = _render_and_save(job)
            records.append(record), dropped.update(reasons), bar.update()
    bar.close()
    scenes_path = out / SCENES_FILE
    _write_records(scenes_path, records)
    stats = {
        "config": asdict(config),
        "scenes": len(records),
        "objects": sum(len(r["objects"]) for r in records),
        "settings": dict(Counter(r["setting"] for r in records)),
        "dropped": dict(sorted(dropped.items())),
    }
    (out / "synth_stats.json").write_text(json.dumps(stats, indent=2) + "\n")
    return scenes_path


def _write_records(path: Path, records: list[dict[str, Any]]) -> None:
    write_scenes(path, [Scene.from_record(record, base_dir=path.parent) for record in records])
