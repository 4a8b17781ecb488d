"""The objects synthetic scenes are built from, and the exact geometry of a body as pybullet renders it.

Every asset is a URDF bundled in ``pybullet_data`` whose visual geometry is an OBJ or binary STL mesh or a
primitive, so the renderer's own triangles can be read back: annotation boxes and silhouettes come from the
same geometry TinyRenderer rasterises, not from the (often coarser) collision shapes.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pybullet as p
import pybullet_data

DATA_DIR = Path(pybullet_data.getDataPath())


@dataclass(frozen=True)
class Asset:
    """A nameable kind of object. ``scale`` is the globalScaling range for the scene setting it is used in;
    ``colour`` is the name of its own (textured) colour, None when it is recoloured from the palette."""

    noun: str
    urdf: str
    scale: tuple[float, float]
    colour: str | None = None
    support: bool = False  # other objects may be stacked on it
    fixed: bool = False  # furniture: does not move under physics
    upright: bool = True  # dropped upright; False lets it land on any face


# Random procedural blobs: pybullet_data/random_urdfs/000..999.
RANDOM_TOY = "toy"
NUM_RANDOM_URDFS = 1000

TABLETOP_ASSETS: tuple[Asset, ...] = (
    Asset("duck", "duck_vhacd.urdf", (0.9, 1.6), colour="yellow"),
    Asset("teddy bear", "teddy_vhacd.urdf", (1.4, 2.6)),
    Asset("mug", "objects/mug.urdf", (0.8, 1.2)),
    Asset("lego brick", "lego/lego.urdf", (1.5, 3.0), upright=False),
    Asset("wooden block", "jenga/jenga.urdf", (0.8, 1.4), colour="brown", support=True, upright=False),
    Asset("domino", "domino/domino.urdf", (1.5, 2.5), colour="white", upright=False),
    Asset("cube", "cube_small.urdf", (0.8, 3.0), support=True, upright=False),
    Asset("ball", "sphere_small.urdf", (0.8, 2.5)),
    Asset("soccer ball", "soccerball.urdf", (0.1, 0.2)),
    Asset("tray", "tray/traybox.urdf", (0.45, 0.7), colour="metal", support=True),
    Asset(RANDOM_TOY, "random_urdfs/{index:03d}/{index:03d}.urdf", (0.9, 1.5), upright=False),
)

TABLES: tuple[Asset, ...] = (  # furniture that table-top objects stand on
    Asset("table", "table/table.urdf", (0.7, 1.0), colour="brown", support=True, fixed=True),
    Asset("small table", "table_square/table_square.urdf", (1.0, 1.4), colour="checkered", support=True, fixed=True),
)

FLOOR_ASSETS: tuple[Asset, ...] = (  # large objects standing on a room's floor
    Asset("teddy bear", "teddy_vhacd.urdf", (3.0, 7.0)),
    Asset("box", "cube.urdf", (0.25, 0.7), support=True),
    Asset("ball", "sphere2.urdf", (0.2, 0.6)),
    Asset("soccer ball", "soccerball.urdf", (0.2, 0.3)),
    Asset("robot", "r2d2.urdf", (0.9, 1.6), colour="white"),
    Asset("duck", "duck_vhacd.urdf", (3.0, 6.0), colour="yellow"),
)

PALETTE: dict[str, tuple[float, float, float, float]] = {
    "red": (0.85, 0.12, 0.1, 1.0),
    "green": (0.15, 0.65, 0.2, 1.0),
    "blue": (0.12, 0.3, 0.9, 1.0),
    "yellow": (0.95, 0.85, 0.15, 1.0),
    "orange": (1.0, 0.5, 0.05, 1.0),
    "purple": (0.5, 0.2, 0.75, 1.0),
    "pink": (1.0, 0.5, 0.75, 1.0),
    "white": (0.95, 0.95, 0.95, 1.0),
    "black": (0.08, 0.08, 0.08, 1.0),
    "gray": (0.5, 0.5, 0.52, 1.0),
    "cyan": (0.1, 0.8, 0.85, 1.0),
}


def urdf_path(asset: Asset, rng: np.random.Generator) -> str:
    """The URDF file of one instance (random toys pick one of the procedural blobs)."""
    if asset.noun == RANDOM_TOY:
        return asset.urdf.format(index=int(rng.integers(NUM_RANDOM_URDFS)))
    return asset.urdf


# ------------------------------------------------------------------------------------------ body geometry


@functools.lru_cache(maxsize=None)
def _mesh_file(path: str) -> tuple[np.ndarray, np.ndarray]:
    """Vertices (N, 3) and triangles (M, 3) of an OBJ or binary STL file, as TinyRenderer loads it."""
    if path.lower().endswith(".stl"):
        return _binary_stl(path)
    vertices, triangles = [], []
    with open(path, encoding="utf-8", errors="replace") as handle:
        for line in handle:
            if line.startswith("v "):
                vertices.append([float(value) for value in line.split()[1:4]])
            elif line.startswith("f "):
                corners = [int(token.split("/")[0]) for token in line.split()[1:]]
                corners = [c - 1 if c > 0 else len(vertices) + c for c in corners]
                triangles.extend([corners[0], corners[i], corners[i + 1]] for i in range(1, len(corners) - 1))
    return np.asarray(vertices, dtype=np.float64), np.asarray(triangles, dtype=np.int64).reshape(-1, 3)


def _binary_stl(path: str) -> tuple[np.ndarray, np.ndarray]:
    data = Path(path).read_bytes()
    count = int(np.frombuffer(data, dtype="<u4", count=1, offset=80)[0])
    record = np.dtype([("normal", "<f4", 3), ("corners", "<f4", (3, 3)), ("attribute", "<u2")])
    corners = np.frombuffer(data, dtype=record, count=count, offset=84)["corners"].reshape(-1, 3)
    return corners.astype(np.float64), np.arange(len(corners)).reshape(-1, 3)


@functools.lru_cache(maxsize=None)
def _unit_box() -> tuple[np.ndarray, np.ndarray]:
    corners = np.array([[x, y, z] for x in (-0.5, 0.5) for y in (-0.5, 0.5) for z in (-0.5, 0.5)])
    faces = [[0, 1, 3], [0, 3, 2], [4, 6, 7], [4, 7, 5], [0, 4, 5], [0, 5, 1],
             [2, 3, 7], [2, 7, 6], [0, 2, 6], [0, 6, 4], [1, 5, 7], [1, 7, 3]]
    return corners, np.asarray(faces)


@functools.lru_cache(maxsize=None)
def _unit_cylinder(segments: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """Radius 1, length 1 along z; its silhouette is the convex hull of these rims, which the triangles fill."""
    angles = np.linspace(0.0, 2.0 * np.pi, segments, endpoint=False)
    rim = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    vertices = np.concatenate([np.c_[rim, np.full(segments, -0.5)], np.c_[rim, np.full(segments, 0.5)]])
    faces = []
    for i in range(segments):
        j = (i + 1) % segments
        faces += [[i, j, segments + j], [i, segments + j, segments + i], [0, i, j], [segments, segments + i, segments + j]]
    return vertices, np.asarray(faces)


@functools.lru_cache(maxsize=None)
def _unit_sphere(rings: int = 8, segments: int = 16) -> tuple[np.ndarray, np.ndarray]:
    theta = np.linspace(0.0, np.pi, rings + 1)
    phi = np.linspace(0.0, 2.0 * np.pi, segments, endpoint=False)
    t, f = np.meshgrid(theta, phi, indexing="ij")
    vertices = np.stack([np.sin(t) * np.cos(f), np.sin(t) * np.sin(f), np.cos(t)], axis=-1).reshape(-1, 3)
    faces = []
    for r in range(rings):
        for s in range(segments):
            a, b = r * segments + s, r * segments + (s + 1) % segments
            faces += [[a, b, b + segments], [a, b + segments, a + segments]]
    return vertices, np.asarray(faces)


def _shape_mesh(shape: tuple) -> tuple[np.ndarray, np.ndarray]:
    """Local mesh of one getVisualShapeData entry, scaled (mesh scales already include globalScaling)."""
    geometry, dimensions, filename = shape[2], shape[3], shape[4].decode()
    if geometry == p.GEOM_MESH:
        vertices, faces = _mesh_file(filename)
        return vertices * np.asarray(dimensions), faces
    if geometry == p.GEOM_BOX:
        vertices, faces = _unit_box()
        return vertices * np.asarray(dimensions), faces
    if geometry == p.GEOM_SPHERE:
        vertices, faces = _unit_sphere()
        return vertices * dimensions[0], faces
    if geometry in (p.GEOM_CYLINDER, p.GEOM_CAPSULE):
        vertices, faces = _unit_cylinder()
        length, radius = dimensions[0], dimensions[1]
        extra = 2.0 * radius if geometry == p.GEOM_CAPSULE else 0.0  # a capsule fits in a longer cylinder
        return vertices * np.array([radius, radius, length + extra]), faces
    raise ValueError(f"unsupported visual geometry type {geometry} in {filename!r}")


def _link_frame(client: int, body: int, link: int) -> tuple[np.ndarray, np.ndarray]:
    """World pose (rotation 3x3, translation) of a link's URDF frame, in which visual origins are given.
    For the base, pybullet reports the centre-of-mass frame, so the inertial offset is undone."""
    if link >= 0:
        state = p.getLinkState(body, link, computeForwardKinematics=True, physicsClientId=client)
        position, orientation = state[4], state[5]
    else:
        com_position, com_orientation = p.getBasePositionAndOrientation(body, physicsClientId=client)
        inertial = p.getDynamicsInfo(body, -1, physicsClientId=client)
        inverse = p.invertTransform(inertial[3], inertial[4])
        position, orientation = p.multiplyTransforms(com_position, com_orientation, *inverse)
    rotation = np.asarray(p.getMatrixFromQuaternion(orientation)).reshape(3, 3)
    return rotation, np.asarray(position)


def body_mesh(client: int, body: int) -> tuple[np.ndarray, np.ndarray]:
    """All visual triangles of a body in world coordinates: vertices (N, 3), faces (M, 3)."""
    all_vertices, all_faces, offset = [], [], 0
    for shape in p.getVisualShapeData(body, physicsClientId=client):
        vertices, faces = _shape_mesh(shape)
        local_rotation = np.asarray(p.getMatrixFromQuaternion(shape[6])).reshape(3, 3)
        link_rotation, link_position = _link_frame(client, body, shape[1])
        in_link = vertices @ local_rotation.T + np.asarray(shape[5])
        all_vertices.append(in_link @ link_rotation.T + link_position)
        all_faces.append(faces + offset)
        offset += len(vertices)
    return np.concatenate(all_vertices), np.concatenate(all_faces)


def heading(client: int, body: int) -> float:
    """Yaw (radians, about world +z) of the body's x axis; for a body lying on its x axis, of its y axis."""
    rotation, _ = _link_frame(client, body, -1)
    axis = rotation[:, 0] if np.hypot(*rotation[:2, 0]) > 0.3 else rotation[:, 1]
    return float(np.arctan2(axis[1], axis[0]))
