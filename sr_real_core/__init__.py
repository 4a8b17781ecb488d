"""sr_real_core: everything of SR-REAL that needs no ROS.

Modules:
- geometry    pinhole intrinsics (incl. ROS CameraInfo, plumb_bob/equidistant distortion), depth decoding,
              projection and back-projection in the OpenCV camera frame (+x right, +y down, +z forward), metres.
- region3d    the region-to-3D interface: a 2D box or mask + depth + intrinsics -> 3D centre, extent, support.
- relations   spatial relations and measurements between 3D boxes (left/right, ..., distance, clock direction).
- scenes      scene records, the project's data contract (JSON Lines), with validation.
- grammar     LOR/DTR prompts, rendering and parsing of completions.
- answers     free-text answers: lengths with units, choices, yes/no, clock hours.
- rewards     TRL-compatible reward functions (format, accuracy, detection, weighted total).
- metrics     benchmark metrics (SpatialRGPT-Bench success, abs-rel, Q-Spatial delta, MRA, centre error).
- cli         the `sr-real` command line.
"""

__version__ = "0.1.0"
