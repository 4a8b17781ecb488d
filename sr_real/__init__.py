"""The `sr_real` package: the `sr-real` command line (`cli`) and the ROS 2 nodes, thin rclpy adapters over
`sr_real_core` (importing this package needs no ROS; the node modules do).

- cli                 `sr-real`: composes the subsystems' commands (core, `sr_real.training`, the ROS wing).
- spatial_query_node  spatial questions about an RGB-D camera stream, answers and RViz markers
                      (`ros2 launch sr_real spatial_query.launch.py`); its logic is `sr_real_core.ros`.
- training, export    installed from the repository's training/ and export/ folders (setup.py `package_dir`).
"""
from pathlib import Path

# Run from a source tree (PYTHONPATH=repo, or an install that predates the mapping), sr_real.training and
# sr_real.export are the repository's training/ and export/ folders.
_SOURCE_TREE = Path(__file__).resolve().parents[1]
if (_SOURCE_TREE / "package.xml").is_file() and (_SOURCE_TREE / "training" / "__init__.py").is_file():
    __path__.append(str(_SOURCE_TREE))  # noqa: F821 - the package's own search path
