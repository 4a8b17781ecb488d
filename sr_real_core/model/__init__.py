"""SR-REAL's model: Qwen2.5-VL (Hugging Face transformers) with region tokens and a 3D positional encoding.

- configuration  `SRRealConfig`: Qwen2.5-VL's configuration plus `region_token_id` and `point_frequencies`.
- modeling       `SRRealForConditionalGeneration`: the backbone plus `PointEncoder` and `RegionProjector`.
- processing     `SRRealProcessor`: Qwen2.5-VL's processor plus regions, depth and intrinsics.
- loading        `load_model(path_or_hub_id)`: SR-REAL or plain Qwen2.5-VL checkpoints, offline, safetensors.
- tiny           `write_tiny_model(out, seed)`: a few-million-parameter checkpoint for CPU tests.
- depth_estimation  `MonocularDepthEstimator`: relative depth for images without a depth sensor.
- cli            the `sr-real model tiny` and `sr-real ask` commands.

This package's own import is light (no torch); import the submodules for the classes.
"""
