"""SR-REAL model configuration: a Qwen2.5-VL configuration plus the two things SR-REAL adds."""
from __future__ import annotations

from transformers import AutoConfig, Qwen2_5_VLConfig


class SRRealConfig(Qwen2_5_VLConfig):
    r"""Qwen2.5-VL with region tokens and a 3D positional encoding of the image features.

    region_token_id (`int`, *optional*):
        Id of the `<region>` token. Each occurrence in the prompt is replaced by a learned projection of the
        mask-weighted mean of the image features inside that region.
    point_frequencies (`int`, *optional*, defaults to 8):
        Log-spaced Fourier frequencies (1, 2, 4, ...) of the per-patch 3D points: xyz plus sin and cos of each
        coordinate at each frequency, 3 * (2 * 8 + 1) = 51 values, as in the reference.
    region_evidence (`bool`, *optional*, defaults to `False`):
        Give each region token a direct path from its region's 3D evidence (`region_points`: the robust centre
        and extent of the region's back-projected depth points) through Fourier features, one linear layer and
        an RMS norm at the text-embedding scale, and RMS-normalise the pooled image feature to that scale too.
        New SR-REAL models (`sr-real model tiny`, Qwen2.5-VL backbones converted by `from_backbone`) have it;
        checkpoints written before it existed lack the field and load and compute exactly as before.
    """

    model_type = "sr_real"

    region_token_id: int | None = None
    point_frequencies: int = 8
    region_evidence: bool = False

    @classmethod
    def from_backbone(cls, backbone: Qwen2_5_VLConfig, region_token_id: int) -> SRRealConfig:
        """The SR-REAL configuration of a plain Qwen2.5-VL backbone (same weights, new modules added)."""
        fields = backbone.to_dict()
        for key in ("model_type", "architectures", "transformers_version", "region_token_id", "region_evidence"):
            fields.pop(key, None)
        return cls(**fields, region_token_id=region_token_id, region_evidence=True)


AutoConfig.register(SRRealConfig.model_type, SRRealConfig, exist_ok=True)
