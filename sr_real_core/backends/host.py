"""The host side of the exported graphs: everything data-dependent, and the greedy decoding loop.

The graphs (see `export/graphs.py`) take tensors only; the host computes what Hugging Face computes with
Python control flow: the vision tower's position ids, window order and cumulative sequence lengths
(transformers' own `vision_utils` functions), Qwen2.5-VL's 3D rotary position ids of the prompt (`rope_positions`,
the same rule as `Qwen2_5_VLModel.get_rope_index`), and the placement of image and region embeddings. A runtime
only has to provide `run(graph, feeds) -> outputs` (`GraphRunner`), so ONNX Runtime and TensorRT share this loop.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

import numpy as np

from sr_real_core.backends.manifest import cache_names


class GraphRunner(Protocol):
    def run(self, graph: str, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]: ...


def _numpy(value: Any) -> np.ndarray:
    return value.detach().cpu().numpy() if hasattr(value, "detach") else np.asarray(value)


def vision_feeds(inputs: Mapping[str, Any], model: Mapping[str, Any], dtype=np.float32) -> dict[str, np.ndarray]:
    """Feeds of the vision graph for the processor outputs of a batch (all its images at once)."""
    import torch
    from transformers.vision_utils import get_vision_cu_seqlens, get_vision_position_ids, get_vision_window_index

    grid = torch.as_tensor(_numpy(inputs["image_grid_thw"]))
    merge = model["spatial_merge_size"]
    window_index, cu_window_seqlens = get_vision_window_index(grid, merge, model["window_size"], model["patch_size"])
    num_tokens = len(window_index)
    points = inputs.get("image_points")
    points = np.full((num_tokens, 3), np.nan, np.float32) if points is None else _numpy(points)
    regions = inputs.get("region_weights")
    # At least one region row, so no graph ever sees an empty tensor; an all-zero row pools to zero and is unused.
    regions = np.zeros((1, num_tokens), np.float32) if regions is None or len(regions) == 0 else _numpy(regions)
    evidence = inputs.get("region_points")  # (regions, 6) 3D evidence; NaN rows (unknown) add nothing
    evidence = np.full((len(regions), 6), np.nan, np.float32) if evidence is None or len(evidence) == 0 \
        else _numpy(evidence)
    return {
        "pixel_values": _numpy(inputs["pixel_values"]).astype(dtype),
        "vision_position_ids": _numpy(get_vision_position_ids(grid, merge)).astype(np.int64),
        "window_index": _numpy(window_index).astype(np.int64),
        "reverse_window_index": np.argsort(_numpy(window_index)).astype(np.int64),
        "cu_seqlens": _numpy(get_vision_cu_seqlens(grid)).astype(np.int64),
        "cu_window_seqlens": _numpy(cu_window_seqlens).astype(np.int64),
        "image_points": points.astype(dtype),
        "region_weights": regions.astype(dtype),
        "region_points": evidence.astype(dtype),
    }


def rope_positions(input_ids: np.ndarray, attention_mask: np.ndarray, image_grid_thw: np.ndarray | None,
                   model: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """(3, batch, seq) 3D rotary position ids of a left- or right-padded prompt, and (batch,) the position of
    the first generated token. Text advances all three by one; an image's tokens take (t, h, w) grid positions
    from the running offset, which then advances by max(h, w) of the merged grid."""
    merge = model["spatial_merge_size"]
    grids = iter([] if image_grid_thw is None else _numpy(image_grid_thw).tolist())
    positions = np.zeros((3,) + input_ids.shape, np.int64)
    next_position = np.zeros(input_ids.shape[0], np.int64)
    for row, (ids, mask) in enumerate(zip(input_ids, attention_mask)):
        real = np.flatnonzero(mask)
        is_image = ids[real] == model["image_token_id"]
        columns, current, start = [], 0, 0
        while start < len(real):
            end = start + 1
            while end < len(real) and is_image[end] == is_image[start]:
                end += 1
            if is_image[start]:
                t, h, w = next(grids)
                t_ids, h_ids, w_ids = np.meshgrid(np.arange(t), np.arange(h // merge), np.arange(w // merge),
                                                  indexing="ij")
                columns.append(np.stack([t_ids.ravel(), h_ids.ravel(), w_ids.ravel()]) + current)
                current += max(h, w) // merge
            else:
                columns.append(np.arange(current, current + end - start)[None].repeat(3, 0))
                current += end - start
            start = end
        if columns:
            row_positions = np.concatenate(columns, axis=1)
            positions[:, row, real] = row_positions
            next_position[row] = row_positions.max() + 1
    return positions, next_position


class GreedyDecoder:
    """Greedy generation over a `GraphRunner`: vision once, prefill, then one decoder call per token with the
    KV cache; rows that reached an end token are padded, as `transformers`' `generate` does."""

    def __init__(self, runner: GraphRunner, manifest: Mapping[str, Any]):
        self.runner = runner
        self.model = manifest["model"]
        self.dtype = np.float16 if manifest.get("io_dtype") == "float16" else np.float32
        self.past_names = cache_names("past", self.model["num_layers"])

    def prompt_embeddings(self, inputs: Mapping[str, Any]) -> np.ndarray:
        input_ids = _numpy(inputs["input_ids"]).astype(np.int64)
        embeds = self.runner.run("embed", {"input_ids": input_ids})[0]
        if inputs.get("pixel_values") is None:
            return embeds
        image_embeds, region_embeds = self.runner.run("vision", vision_feeds(inputs, self.model, self.dtype))
        embeds = embeds.copy()
        embeds[input_ids == self.model["image_token_id"]] = image_embeds
        region_mask = input_ids == self.model["region_token_id"]
        if region_mask.any():
            embeds[region_mask] = region_embeds[: int(region_mask.sum())]
        return embeds

    def generate(self, inputs: Mapping[str, Any], max_new_tokens: int, constraint=None) -> list[list[int]]:
        """Greedy tokens per row; `constraint` (`constrained.AnswerConstraint`) may overrule the argmax."""
        input_ids = _numpy(inputs["input_ids"]).astype(np.int64)
        batch = input_ids.shape[0]
        mask = _numpy(inputs.get("attention_mask", np.ones_like(input_ids))).astype(np.int64)
        positions, next_position = rope_positions(input_ids, mask, inputs.get("image_grid_thw"), self.model)
        empty = np.zeros((batch, self.model["num_kv_heads"], 0, self.model["head_dim"]), self.dtype)
        past = dict.fromkeys(self.past_names, empty)
        embeds = self.prompt_embeddings(inputs)
        eos = set(self.model["eos_token_ids"])
        done = np.zeros(batch, bool)
        tokens: list[np.ndarray] = []
        for step in range(max_new_tokens):
            outputs = self.runner.run("decoder", {"inputs_embeds": embeds.astype(self.dtype), "position_ids": positions,
                                                  "attention_mask": mask, **past})
            logits = outputs[0]
            best = logits.argmax(-1) if constraint is None else constraint.pick(logits.argmax(-1), logits.__getitem__)
            next_ids = np.where(done, self.model["pad_token_id"], best)
            if constraint is not None:
                constraint.advance(next_ids)
            tokens.append(next_ids)
            done |= np.isin(next_ids, list(eos))
            if done.all() or step == max_new_tokens - 1:
                break
            past = dict(zip(self.past_names, outputs[1:]))
            embeds = self.runner.run("embed", {"input_ids": next_ids[:, None].astype(np.int64)})[0]
            positions = np.broadcast_to((next_position + step)[None, :, None], (3, batch, 1)).copy()
            mask = np.concatenate([mask, np.ones((batch, 1), np.int64)], axis=1)
        return np.stack(tokens, axis=1).tolist() if tokens else [[] for _ in range(batch)]
