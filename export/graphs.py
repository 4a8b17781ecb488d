"""The three exportable graphs of an SR-REAL model: vision, token embedding and decoder with KV cache.

Each wraps the loaded model's own modules (same weights, same layer code where it exports cleanly) and
re-writes only what does not: Hugging Face's vision attention splits the sequence with `cu_seqlens.tolist()`
(split sizes baked into the graph), and its decoder mask and cache objects do not trace. Here everything
data-dependent comes in as a tensor computed on the host (`sr_real_core.backends.host`): vision position
ids, window order, cumulative sequence lengths, 3D rotary position ids. The attention masks are built inside
the graphs with a finite fill value (`MASK_FILL`), so an FP16 engine never sees -inf.
"""
from __future__ import annotations

import torch
from torch import nn
from transformers.models.qwen2_5_vl.modeling_qwen2_5_vl import (
    apply_rotary_pos_emb,
    apply_rotary_pos_emb_vision,
    repeat_kv,
)

from sr_real_core.backends.manifest import MASK_FILL


def segment_bias(cu_seqlens: torch.Tensor, length: int | torch.SymInt, dtype: torch.dtype) -> torch.Tensor:
    """(length, length) additive mask: 0 between tokens of the same segment of `cu_seqlens`, MASK_FILL elsewhere."""
    positions = torch.arange(length, device=cu_seqlens.device)
    segment = (positions[:, None] >= cu_seqlens[None, 1:]).sum(-1)
    same = segment[:, None] == segment[None, :]
    return torch.where(same, torch.zeros((), dtype=dtype), torch.full((), MASK_FILL, dtype=dtype))


def attend(query, key, value, bias, scaling: float):
    """Eager attention (matmul, additive mask, softmax in FP32), the form every ONNX runtime and TensorRT parse."""
    weights = torch.matmul(query, key.transpose(-1, -2)) * scaling + bias
    weights = torch.softmax(weights.float(), dim=-1).to(query.dtype)
    return torch.matmul(weights, value)


class VisionGraph(nn.Module):
    """Patches -> merged image features (+ 3D point encoding) and region embeddings, for all images at once.

    Inputs (host-computed except pixels, points, region weights and region evidence `region_points`, NaN rows
    where unknown): `vision_position_ids` (patches, 2),
    `window_index` / `reverse_window_index` (merged tokens,), `cu_seqlens` / `cu_window_seqlens` in patches.
    """

    def __init__(self, model):
        super().__init__()
        self.visual = model.model.visual
        self.point_encoder = model.model.point_encoder
        self.region_embeddings = model.model.region_embeddings

    def _reorder(self, tensor: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        unit = self.visual.spatial_merge_unit
        return tensor.reshape(-1, unit, tensor.shape[-1])[index].reshape(-1, tensor.shape[-1])

    def _attention(self, attn, hidden, cos, sin, bias):
        length = hidden.shape[0]
        query, key, value = attn.qkv(hidden).reshape(length, 3, attn.num_heads, -1).permute(1, 0, 2, 3).unbind(0)
        query, key = apply_rotary_pos_emb_vision(query, key, cos, sin)
        output = attend(query.transpose(0, 1), key.transpose(0, 1), value.transpose(0, 1), bias, attn.scaling)
        return attn.proj(output.transpose(0, 1).reshape(length, -1))

    def forward(self, pixel_values, vision_position_ids, window_index, reverse_window_index, cu_seqlens,
                cu_window_seqlens, image_points, region_weights, region_points):
        visual = self.visual
        hidden = self._reorder(visual.patch_embed(pixel_values), window_index)
        cos, sin = visual.rotary_pos_emb(hidden, vision_position_ids)
        cos, sin = self._reorder(cos, window_index), self._reorder(sin, window_index)
        length = hidden.shape[0]
        full_bias = segment_bias(cu_seqlens, length, hidden.dtype)
        window_bias = segment_bias(cu_window_seqlens, length, hidden.dtype)
        for index, block in enumerate(visual.blocks):
            bias = full_bias if index in visual.fullatt_block_indexes else window_bias
            hidden = hidden + self._attention(block.attn, block.norm1(hidden), cos, sin, bias)
            hidden = hidden + block.mlp(block.norm2(hidden))
        image_embeds = visual.merger(hidden)[reverse_window_index]
        image_embeds = image_embeds + self.point_encoder(image_points).to(image_embeds.dtype)
        region_embeds = self.region_embeddings(image_embeds, region_weights, region_points)
        return image_embeds, region_embeds


class EmbedGraph(nn.Module):
    """Token ids -> input embeddings (the host then puts image and region embeddings in their places)."""

    def __init__(self, model):
        super().__init__()
        self.embed_tokens = model.model.language_model.embed_tokens

    def forward(self, input_ids):
        return self.embed_tokens(input_ids)


class DecoderGraph(nn.Module):
    """One prefill or decode step: embeddings, 3D position ids, attention mask and past keys/values in;
    logits of the last position and present keys/values (past + new) out."""

    def __init__(self, model):
        super().__init__()
        self.language_model = model.model.language_model
        self.lm_head = model.lm_head

    def causal_bias(self, attention_mask: torch.Tensor, new: int, past: int, dtype) -> torch.Tensor:
        """(batch, 1, new, past + new): a query sees earlier keys that are not padding."""
        query_positions = torch.arange(new, device=attention_mask.device) + past
        key_positions = torch.arange(attention_mask.shape[1], device=attention_mask.device)
        allowed = (key_positions[None, :] <= query_positions[:, None])[None, None] & (attention_mask[:, None, None, :] > 0)
        return torch.where(allowed, torch.zeros((), dtype=dtype), torch.full((), MASK_FILL, dtype=dtype))

    def forward(self, inputs_embeds, position_ids, attention_mask, past_key_values: tuple[torch.Tensor, ...]):
        text = self.language_model
        batch, new, _ = inputs_embeds.shape
        bias = self.causal_bias(attention_mask, new, past_key_values[0].shape[2], inputs_embeds.dtype)
        cos, sin = text.rotary_emb(inputs_embeds, position_ids)
        hidden, presents = inputs_embeds, []
        for index, layer in enumerate(text.layers):
            attn = layer.self_attn
            normed = layer.input_layernorm(hidden)
            query, key, value = (projection(normed).view(batch, new, -1, attn.head_dim).transpose(1, 2)
                                 for projection in (attn.q_proj, attn.k_proj, attn.v_proj))
            query, key = apply_rotary_pos_emb(query, key, cos, sin)
            key = torch.cat([past_key_values[2 * index], key], dim=2)
            value = torch.cat([past_key_values[2 * index + 1], value], dim=2)
            presents += [key, value]
            output = attend(query, repeat_kv(key, attn.num_key_value_groups),
                            repeat_kv(value, attn.num_key_value_groups), bias, attn.scaling)
            hidden = hidden + attn.o_proj(output.transpose(1, 2).reshape(batch, new, -1))
            hidden = hidden + layer.mlp(layer.post_attention_layernorm(hidden))
        logits = self.lm_head(text.norm(hidden[:, -1]))
        return (logits, *presents)
