"""The environment ROS 2 from the package index's wheels needs, filled in where the user left it unset.

A sourced ROS (`/opt/ros/<distro>/setup.bash`) sets AMENT_PREFIX_PATH; the `ros-*` wheels do not (their
bootstrapper sets only the library path), so packages in the venv would be missing from the ament index.
FASTDDS_DEFAULT_PROFILES_FILE defaults to `fastdds_interop.xml` (Fast DDS type propagation off) so that the
node's topics stay readable by Cyclone DDS peers (rmw_cyclonedds_cpp, `sr-real serve --transport dds`); a
profile the user sets wins. No import of ROS here: this runs before rclpy starts Fast DDS.
"""
from __future__ import annotations

import os
import sys
from collections.abc import MutableMapping
from pathlib import Path

INTEROP_PROFILE = Path(__file__).with_name("fastdds_interop.xml")


def wheel_prefix() -> Path | None:
    """This Python's prefix when ROS 2 was installed into it from wheels (its ament index holds rclpy)."""
    prefix = Path(sys.prefix)
    return prefix if (prefix / "share" / "ament_index" / "resource_index" / "packages" / "rclpy").is_file() else None


def prepare(environ: MutableMapping[str, str] = os.environ) -> dict[str, str]:
    """Set what is missing (before rclpy.init); returns the variables set."""
    changes = {}
    prefix = wheel_prefix()
    prefixes = [part for part in environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep) if part]
    if prefix is not None and str(prefix) not in prefixes:
        changes["AMENT_PREFIX_PATH"] = os.pathsep.join([*prefixes, str(prefix)])
    if environ.get("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp") == "rmw_fastrtps_cpp" \
            and "FASTDDS_DEFAULT_PROFILES_FILE" not in environ:
        changes["FASTDDS_DEFAULT_PROFILES_FILE"] = str(INTEROP_PROFILE)
    environ.update(changes)
    return changes
