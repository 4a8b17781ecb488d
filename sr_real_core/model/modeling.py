"""SR-REAL model: Qwen2.5-VL plus region tokens and a 3D positional encoding of the image features.

Two additions to the backbone, both in `SRRealModel`:
- `get_image_features` adds `point_encoder(image_points)` to the merged image features: per image token, the
  metric 3D point of its pixels (or a pseudo-3D point), Fourier-encoded and passed through a small MLP.
- `forward` replaces the embedding of each `<region>` token by `region_projector(mask-weighted mean of the image
  features inside the region)`; `region_weights` (one row per region token, one column per image token of the
  batch) come from `SRRealProcessor`.
- with `config.region_evidence`, each region token also gets `region_point_encoder(region_points)`: the
  robust centre and extent of the region's own back-projected depth points (one row of 6 per region token,
  from `SRRealProcessor`), Fourier-encoded, one linear layer, RMS-normalised to the text-embedding scale; and
  the pooled image feature is RMS-normalised to that scale before the projection. A small model reads a
  region's metric position from this direct path within minutes; through the per-token encoding alone it
  did not (issue 17: "is this region in the left half?" stayed at chance after SFT).
Both per-token modules end in a zero-initialised layer, so a pretrained backbone computes exactly what it did
before wherever no region token is present. Everything else (vision tower, mRoPE, decoder, generation) is the
backbone's own code. In `generate`, the extra inputs act at prefill only: the images are encoded once
(`get_image_features`, which consumes `image_points`) and `prepare_inputs_for_generation` drops
`region_weights` and `region_points` from the decode steps, whose keys and values are already in the cache.

(No `from __future__ import annotations` here: transformers reads the `config: SRRealConfig` annotation as the
config class at class creation.)
"""

import torch
from torch import nn
from transformers import AutoModelForImageTextToText
from transformers import initialization as init
from transformers.models.qwen2_5_vl.modeling_qwen2_5_vl import (
    Qwen2_5_VisionTransformerPretrainedModel,
    Qwen2_5_VLForConditionalGeneration,
    Qwen2_5_VLModel,
    Qwen2_5_VLPreTrainedModel,
    Qwen2_5_VLTextModel,
)

from sr_real_core.model.configuration import SRRealConfig


class ZeroInitLinear(nn.Linear):
    """A linear layer that starts at zero, so the block it ends adds nothing until it is trained."""

    def reset_parameters(self) -> None:
        nn.init.zeros_(self.weight)
        if self.bias is not None:
            nn.init.zeros_(self.bias)


# A region's 3D evidence: robust centre (x, y, z) and extent (x, y, z), metres (or pseudo-3D units).
REGION_POINT_FEATURES = 6
# Frequencies (cycles per metre) of the region evidence's Fourier features: periods 8 m down to 0.2 m, so that
# the metres and tenths digits that `<detect>` writes are each a simple function of one (sin, cos) pair.
REGION_POINT_FREQUENCIES = (0.125, 0.25, 0.5, 1.0, 2.0, 5.0)


def finite_rows(values: torch.Tensor) -> torch.Tensor:
    """(..., D) -> (..., 1): whether every value of the row is finite. Written as |x| < inf (NaN compares false)
    rather than isfinite, so the ONNX export has no IsInf, which TensorRT's parser lacks."""
    return (values.abs() < float("inf")).all(-1, keepdim=True)


def fourier_features(values: torch.Tensor, angular_frequencies: torch.Tensor) -> torch.Tensor:
    """(..., D) -> (..., D * (2F + 1)): the values, then sin and cos of each value at each angular frequency."""
    angles = (values[..., None] * angular_frequencies).flatten(-2)
    return torch.cat([values, angles.sin(), angles.cos()], dim=-1)


class RMSScale(nn.Module):
    """RMS normalisation with a learned per-channel gain; `_init_weights` starts the gain at the text-embedding
    scale (the text config's `initializer_range` for a randomly initialised model, `match_region_scale` for a pretrained
    backbone), so region embeddings start at the norm of the token embeddings around them."""

    def __init__(self, hidden_size: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(hidden_size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)
        return x * self.weight


class RegionPointEncoder(nn.Module):
    """Region 3D evidence (R, 6), NaN rows where unknown -> (R, hidden) embeddings; zero rows where unknown."""

    def __init__(self, hidden_size: int, frequencies=REGION_POINT_FREQUENCIES):
        super().__init__()
        self.frequencies = tuple(frequencies)  # not a buffer: from_pretrained leaves non-persistent buffers empty
        self.linear = nn.Linear(REGION_POINT_FEATURES * (2 * len(frequencies) + 1), hidden_size)
        self.norm = RMSScale(hidden_size)

    def forward(self, evidence: torch.Tensor) -> torch.Tensor:
        known = finite_rows(evidence)
        evidence = torch.where(known, evidence, 0.0).float()
        dtype = self.linear.weight.dtype
        angular = 2 * torch.pi * torch.tensor(self.frequencies, device=evidence.device)
        encoding = fourier_features(evidence, angular).to(dtype)
        return self.norm(self.linear(encoding)) * known.to(dtype)


class PointEncoder(nn.Module):
    """3D points (N, 3) -> features (N, hidden) to add to image tokens; zero where the point is unknown (NaN).

    Fourier features as in the reference: xyz, sin(2^k xyz), cos(2^k xyz) for k < num_frequencies.
    """

    def __init__(self, hidden_size: int, num_frequencies: int = 8):
        super().__init__()
        self.num_frequencies = num_frequencies
        self.mlp = nn.Sequential(nn.Linear(3 * (2 * num_frequencies + 1), hidden_size), nn.GELU(),
                                 ZeroInitLinear(hidden_size, hidden_size))

    def forward(self, points: torch.Tensor) -> torch.Tensor:
        known = finite_rows(points)
        points = torch.where(known, points, 0.0).float()
        frequencies = 2.0 ** torch.arange(self.num_frequencies, device=points.device, dtype=points.dtype)
        encoding = fourier_features(points, frequencies)
        dtype = self.mlp[0].weight.dtype
        return self.mlp(encoding.to(dtype)) * known.to(dtype)


class RegionProjector(nn.Module):
    """Pooled image features -> region token embedding.

    The image features are already in the LLM's embedding space, so the projection is the identity plus a
    learned residual that starts at zero: an untrained region token reads as the average image token of its region.
    """

    def __init__(self, hidden_size: int):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(hidden_size, hidden_size), nn.GELU(),
                                 ZeroInitLinear(hidden_size, hidden_size))

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        return pooled + self.mlp(pooled)


class SRRealPreTrainedModel(Qwen2_5_VLPreTrainedModel):
    config: SRRealConfig

    def _init_weights(self, module: nn.Module) -> None:
        super()._init_weights(module)
        # Also when SR-REAL is built from a plain Qwen2.5-VL checkpoint: the new blocks start as no-ops.
        if isinstance(module, ZeroInitLinear):
            init.zeros_(module.weight)
            if module.bias is not None:
                init.zeros_(module.bias)
        if isinstance(module, RMSScale):
            init.constant_(module.weight, getattr(self.config.get_text_config(), "initializer_range", 0.02))


class SRRealModel(SRRealPreTrainedModel, Qwen2_5_VLModel):
    def __init__(self, config: SRRealConfig):
        SRRealPreTrainedModel.__init__(self, config)
        # The backbone's modules, under the backbone's names, so Qwen2.5-VL checkpoints load as they are.
        self.visual = Qwen2_5_VisionTransformerPretrainedModel._from_config(config.vision_config)
        self.language_model = Qwen2_5_VLTextModel._from_config(config.text_config)
        self.rope_deltas = None
        hidden_size = config.text_config.hidden_size
        self.point_encoder = PointEncoder(hidden_size, config.point_frequencies)
        self.region_projector = RegionProjector(hidden_size)
        if config.region_evidence:
            self.region_norm = RMSScale(hidden_size)
            self.region_point_encoder = RegionPointEncoder(hidden_size)
        self.post_init()

    @torch.no_grad()
    def match_region_scale(self) -> None:
        """Start the region embeddings' gains at the RMS of the token embeddings (after loading a pretrained
        backbone, whose embedding scale `initializer_range` does not describe)."""
        if self.config.region_evidence:
            scale = self.get_input_embeddings().weight.float().pow(2).mean().sqrt()
            self.region_norm.weight.fill_(scale)
            self.region_point_encoder.norm.weight.fill_(scale)

    def get_image_features(self, pixel_values: torch.Tensor, image_grid_thw: torch.LongTensor | None = None,
                           image_points: torch.Tensor | None = None, **kwargs):
        """The backbone's merged image features, plus the encoding of `image_points` (one 3D point per image
        token of the batch, NaN where unknown) when given. `generate` calls this once, before prefill."""
        kwargs.pop("return_dict", None)
        outputs = super().get_image_features(pixel_values, image_grid_thw, return_dict=True, **kwargs)
        if image_points is not None:
            features = torch.cat(outputs.pooler_output)
            if image_points.shape != (features.shape[0], 3):
                raise ValueError(f"image_points must have shape ({features.shape[0]}, 3), one point per image "
                                 f"token, got {tuple(image_points.shape)}")
            encoding = self.point_encoder(image_points.to(features.device))
            sizes = [len(f) for f in outputs.pooler_output]
            outputs.pooler_output = tuple(torch.split(features + encoding.to(features.dtype), sizes))
        return outputs

    @staticmethod
    def pool_regions(image_features: torch.Tensor, region_weights: torch.Tensor) -> torch.Tensor:
        """(regions, hidden): the region_weights-weighted mean image feature of each region (0 for an empty one)."""
        weights = region_weights.to(image_features.device, image_features.dtype)
        return weights @ image_features / weights.sum(-1, keepdim=True).clamp_min(1e-6)

    def region_embeddings(self, image_features: torch.Tensor, region_weights: torch.Tensor,
                          region_points: torch.Tensor | None = None) -> torch.Tensor:
        """(regions, hidden): each region's projected pooled image feature, plus (with `config.region_evidence`)
        the encoding of its 3D evidence. The ONNX vision graph calls this too, so both stay one computation."""
        pooled = self.pool_regions(image_features, region_weights)
        if self.config.region_evidence:
            pooled = self.region_norm(pooled)
        region_embeds = self.region_projector(pooled)
        if self.config.region_evidence and region_points is not None:
            region_embeds = region_embeds + self.region_point_encoder(
                region_points.to(region_embeds.device)).to(region_embeds.dtype)
        return region_embeds

    def embed_regions(self, input_ids: torch.LongTensor, inputs_embeds: torch.Tensor,
                      image_features: torch.Tensor, region_weights: torch.Tensor,
                      region_points: torch.Tensor | None = None) -> torch.Tensor:
        """Replace the embedding of each `<region>` token (in reading order over the batch) by its region's
        projected, mask-weighted mean image feature, plus (with `config.region_evidence`) the encoding of its
        3D evidence `region_points` (one row of 6 per region token, NaN where unknown; None: no depth)."""
        if self.config.region_token_id is None:
            raise ValueError("this model has no region token (config.region_token_id is None)")
        region_mask = input_ids == self.config.region_token_id
        num_tokens = int(region_mask.sum())
        if region_weights.shape[0] != num_tokens or region_weights.shape[1] != image_features.shape[0]:
            raise ValueError(
                f"region_weights has shape {tuple(region_weights.shape)} but the batch has {num_tokens} region "
                f"tokens and {image_features.shape[0]} image tokens (num_return_sequences > 1 is not supported "
                "with regions: repeat the prompts instead)")
        if region_points is not None and region_points.shape != (num_tokens, REGION_POINT_FEATURES):
            raise ValueError(f"region_points must have shape ({num_tokens}, {REGION_POINT_FEATURES}), one row "
                             f"per region token, got {tuple(region_points.shape)}")
        region_embeds = self.region_embeddings(image_features, region_weights, region_points)
        region_embeds = region_embeds.to(inputs_embeds.dtype)
        return inputs_embeds.masked_scatter(region_mask.unsqueeze(-1).to(inputs_embeds.device), region_embeds)

    def forward(self, input_ids: torch.LongTensor | None = None, inputs_embeds: torch.Tensor | None = None,
                pixel_values: torch.Tensor | None = None, image_grid_thw: torch.LongTensor | None = None,
                mm_encoder_outputs: dict | None = None, image_points: torch.Tensor | None = None,
                region_weights: torch.Tensor | None = None, region_points: torch.Tensor | None = None, **kwargs):
        # Encode the images here rather than in the backbone's forward, so that the region pooling sees exactly
        # the features (3D encoding included) that the language model receives.
        if pixel_values is not None:
            image = self.get_image_features(pixel_values, image_grid_thw, image_points=image_points)
            mm_encoder_outputs = {**(mm_encoder_outputs or {}), "image": image}
        if region_weights is not None:
            image = (mm_encoder_outputs or {}).get("image")
            if image is None or input_ids is None:
                raise ValueError("region_weights need input_ids and the images of the same call")
            if inputs_embeds is None:
                inputs_embeds = self.get_input_embeddings()(input_ids)
            inputs_embeds = self.embed_regions(input_ids, inputs_embeds, torch.cat(image.pooler_output),
                                               region_weights, region_points)
        return super().forward(input_ids=input_ids, inputs_embeds=inputs_embeds, image_grid_thw=image_grid_thw,
                               mm_encoder_outputs=mm_encoder_outputs, **kwargs)


class SRRealForConditionalGeneration(SRRealPreTrainedModel, Qwen2_5_VLForConditionalGeneration):
    """Qwen2.5-VL for generation, with `image_points`, `region_weights` and `region_points` as extra
    (prefill-only) inputs."""

    def __init__(self, config: SRRealConfig):
        SRRealPreTrainedModel.__init__(self, config)
        self.model = SRRealModel(config)
        self.lm_head = nn.Linear(config.text_config.hidden_size, config.text_config.vocab_size, bias=False)
        self.post_init()

    # The full signature is spelled out: `generate` inspects it to decide which inputs the model accepts.
    def forward(self, input_ids=None, attention_mask=None, position_ids=None, past_key_values=None,
                inputs_embeds=None, labels=None, use_cache=None, pixel_values=None, pixel_values_videos=None,
                image_grid_thw=None, video_grid_thw=None, mm_token_type_ids=None, second_per_grid_ts=None,
                logits_to_keep=0, mm_encoder_outputs=None, image_points=None, region_weights=None,
                region_points=None, **kwargs):
        return super().forward(
            input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
            past_key_values=past_key_values, inputs_embeds=inputs_embeds, labels=labels, use_cache=use_cache,
            pixel_values=pixel_values, pixel_values_videos=pixel_values_videos, image_grid_thw=image_grid_thw,
            video_grid_thw=video_grid_thw, mm_token_type_ids=mm_token_type_ids,
            second_per_grid_ts=second_per_grid_ts, logits_to_keep=logits_to_keep,
            mm_encoder_outputs=mm_encoder_outputs, image_points=image_points, region_weights=region_weights,
            region_points=region_points, **kwargs)

    def prepare_inputs_for_generation(self, *args, is_first_iteration: bool = False, **kwargs):
        inputs = super().prepare_inputs_for_generation(*args, is_first_iteration=is_first_iteration, **kwargs)
        if not is_first_iteration and inputs.get("use_cache", True):
            # After prefill the region embeddings live in the KV cache; decode steps see only new tokens.
            for key in ("region_weights", "region_points", "image_points"):
                inputs.pop(key, None)
        return inputs


AutoModelForImageTextToText.register(SRRealConfig, SRRealForConditionalGeneration, exist_ok=True)
