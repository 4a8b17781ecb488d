"""What the model sees of a training record besides its text: images, regions, depth and intrinsics.

TRL's trainers hand images to the processor but know nothing of SR-REAL's regions and depth, so both trainers
get them from here:

- `record_visuals(record, text)`: a mixture record as the project's one request type, a
  `sr_real_core.query.Query` (`Query.from_record`: images as PIL, `Region`s, depth maps in metres,
  intrinsics), with the prompt `text` as its question. Records come from
  `sr_real_core.data.mixture.load_mixture` (`images` decoded, paths absolute); `regions` are
  `{ref, bbox_2d, ...}` on the record's first image, `depth` (+ `depth_unit`) and `intrinsics` belong to it.
- `encode(processor, texts, visuals)`: one processor call for a batch.
- `split_visual_inputs` / `join_visual_inputs`: a batch's visual tensors cut into per-sample pieces and
  re-assembled for any subset of samples. GRPO needs this: it shuffles and re-chunks completions between
  generation and the loss, and each chunk must carry exactly its own samples' pixels, region weights and
  3D points. Region weights are block-diagonal over samples (rows: a sample's `<region>` tokens, columns: its
  image tokens), so joining places each sample's block at its image tokens' offset.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from sr_real_core.query import REGION_TOKEN, Query

IMAGE_TOKEN_TYPE = 1  # Qwen2.5-VL's mm_token_type_ids: 0 text, 1 image, 2 video
IGNORE_INDEX = -100  # labels' ignored value (the loss skips it)


def assistant_header(tokenizer) -> tuple[list[int], int]:
    """The token ids that open an assistant turn (`<|im_start|>assistant\\n`) and the id that ends it."""
    return (tokenizer.encode("<|im_start|>assistant\n", add_special_tokens=False),
            tokenizer.convert_tokens_to_ids("<|im_end|>"))


def assistant_labels(header: list[int], end: int, input_ids: torch.Tensor,
                     attention_mask: torch.Tensor) -> torch.Tensor:
    """Labels on the assistant turns only: everything after each `header` up to and including its `end` token (so
    the model learns to stop); the rest and the padding are IGNORE_INDEX."""
    labels = torch.full_like(input_ids, IGNORE_INDEX)
    width = len(header)
    for row, ids in enumerate(input_ids.tolist()):
        start = 0
        while (start := _find(ids, header, start)) >= 0:
            begin = start + width
            stop = ids.index(end, begin) + 1 if end in ids[begin:] else len(ids)
            labels[row, begin:stop] = input_ids[row, begin:stop]
            start = stop
    return labels.masked_fill(attention_mask == 0, IGNORE_INDEX)


def _find(sequence: list[int], pattern: list[int], start: int) -> int:
    """Index of the first occurrence of `pattern` in `sequence` at or after `start`, or -1."""
    for index in range(start, len(sequence) - len(pattern) + 1):
        if sequence[index:index + len(pattern)] == pattern:
            return index
    return -1


def record_visuals(record: Mapping[str, Any], text: str, use_depth: bool = True, images_key: str = "images") -> Query:
    """The visual inputs of one mixture record whose prompt is `text` (its `<region>` tokens are counted).
    Images are PIL images or paths, under `images_key`."""
    query = Query.from_record(record, question=text, use_depth=use_depth, images_key=images_key)
    if text.count(REGION_TOKEN) != len(query.regions):
        raise ValueError(f"record {record.get('id')!r}: the prompt has {text.count(REGION_TOKEN)} {REGION_TOKEN} "
                         f"tokens but the record has {len(query.regions)} regions (column 'regions' with 'bbox_2d')")
    return query


def user_turns_with_images(messages: Sequence[Mapping[str, Any]], num_images: int) -> list[dict[str, Any]]:
    """Chat messages with the images placed at the start of the first user turn (string contents kept)."""
    result, placed = [], False
    for message in messages:
        content = message["content"]
        if message["role"] == "user" and not placed:
            parts = content if isinstance(content, list) else [{"type": "text", "text": content}]
            content = [{"type": "image"}] * num_images + list(parts)
            placed = True
        result.append({"role": message["role"], "content": content})
    return result


def encode(processor, texts: Sequence[str], visuals: Sequence[Query], padding_side: str = "right", **kwargs):
    """One processor call for a batch: tokens, pixels, region weights and 3D points."""
    return processor(
        images=[image for v in visuals for image in v.images] or None,
        text=list(texts),
        regions=[v.regions for v in visuals],
        depths=[d for v in visuals for d in v.depths] or None,
        intrinsics=[k for v in visuals for k in v.intrinsics] or None,
        padding=True, padding_side=padding_side, return_tensors="pt", **kwargs,
    )


@dataclass
class SampleVisuals:
    """One sample's share of a batch's visual tensors."""

    pixel_values: torch.Tensor  # (patches, patch_dim)
    image_grid_thw: torch.Tensor  # (images, 3)
    region_weights: torch.Tensor  # (regions, image tokens of this sample)
    image_points: torch.Tensor | None  # (image tokens of this sample, 3), NaN where unknown
    region_points: torch.Tensor | None = None  # (regions, 6): each region's 3D evidence, NaN where unknown


def split_visual_inputs(batch: Mapping[str, Any], input_ids: torch.Tensor, images_per_sample: Sequence[int],
                        region_token_id: int, merge_size: int) -> list[SampleVisuals]:
    """Cut a processor batch's visual tensors into one `SampleVisuals` per row of `input_ids`."""
    grids = batch["image_grid_thw"]
    patches = grids.prod(-1)
    tokens = patches // merge_size**2
    regions = (input_ids == region_token_id).sum(-1).tolist()
    weights = batch.get("region_weights")
    points = batch.get("image_points")
    evidence = batch.get("region_points")
    samples, image, patch, token, region = [], 0, 0, 0, 0
    for count, region_count in zip(images_per_sample, regions):
        n_patches, n_tokens = int(patches[image:image + count].sum()), int(tokens[image:image + count].sum())
        samples.append(SampleVisuals(
            pixel_values=batch["pixel_values"][patch:patch + n_patches],
            image_grid_thw=grids[image:image + count],
            region_weights=(weights[region:region + region_count, token:token + n_tokens] if weights is not None
                            else torch.zeros(0, n_tokens)),
            image_points=points[token:token + n_tokens] if points is not None else None,
            region_points=evidence[region:region + region_count] if evidence is not None else None,
        ))
        image, patch, token, region = image + count, patch + n_patches, token + n_tokens, region + region_count
    return samples


def join_visual_inputs(samples: Sequence[SampleVisuals], input_ids: torch.Tensor,
                       image_token_id: int) -> dict[str, torch.Tensor]:
    """The model's visual keyword arguments for a batch of `input_ids` rows made of `samples`, in order
    (`mm_token_type_ids`, which Qwen2.5-VL's 3D RoPE needs, marks the image tokens of `input_ids`)."""
    device = input_ids.device
    tokens = [s.region_weights.shape[1] for s in samples]
    total = sum(tokens)
    rows, offset = [], 0
    for sample, n_tokens in zip(samples, tokens):
        block = torch.zeros(sample.region_weights.shape[0], total)
        block[:, offset:offset + n_tokens] = sample.region_weights
        rows.append(block)
        offset += n_tokens
    inputs = {
        "pixel_values": torch.cat([s.pixel_values for s in samples]).to(device),
        "image_grid_thw": torch.cat([s.image_grid_thw for s in samples]).to(device),
        "mm_token_type_ids": (input_ids == image_token_id).int() * IMAGE_TOKEN_TYPE,
    }
    region_weights = torch.cat(rows)
    if region_weights.shape[0]:
        inputs["region_weights"] = region_weights.to(device)
    if any(s.image_points is not None for s in samples):
        inputs["image_points"] = torch.cat([
            s.image_points if s.image_points is not None else torch.full((n, 3), float("nan"))
            for s, n in zip(samples, tokens)]).to(device)
    if region_weights.shape[0] and any(s.region_points is not None for s in samples):
        inputs["region_points"] = torch.cat([
            s.region_points if s.region_points is not None else torch.full((s.region_weights.shape[0], 6), float("nan"))
            for s in samples]).to(device)
    return inputs
