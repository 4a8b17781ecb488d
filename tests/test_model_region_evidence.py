"""The region-to-3D path (issue 17): each region's 3D evidence reaches its region token directly, at the
text-embedding scale; checkpoints written before it load and compute as before."""
import json

import numpy as np
import torch

from sr_real_core.geometry import Intrinsics
from sr_real_core.model.loading import load_model
from sr_real_core.region3d import lift_region

from test_model import K, tiny, tiny_dir  # noqa: F401  (the tiny checkpoint fixtures, one per module)

QUESTION = "Is the red bbox <region> left of the blue bbox <region>?"
BOXES = [{"box": [10, 20, 40, 60]}, {"box": [70, 10, 100, 50]}]


def scene():
    from PIL import Image

    rng = np.random.default_rng(0)
    depth = np.full((84, 112), 3.0, np.float32)  # a wall at 3 m, two boxes in front of it
    depth[25:55, 15:35] = 1.0
    depth[15:45, 75:95] = 2.0
    return Image.fromarray(rng.integers(0, 255, (84, 112, 3), dtype=np.uint8)), depth


def encode(processor, depth=True, intrinsics=True):
    image, depth_map = scene()
    return processor(images=[image], text=[processor.chat_prompt(QUESTION)], regions=[BOXES],
                     depths=[depth_map] if depth else None, intrinsics=[K] if intrinsics and depth else None)


def region_embeddings(model, batch, points="keep"):
    with torch.no_grad():
        image = model.model.get_image_features(batch["pixel_values"], batch["image_grid_thw"],
                                               image_points=batch.get("image_points"))
        ids = batch["input_ids"]
        embeds = model.model.embed_regions(ids, model.model.get_input_embeddings()(ids),
                                           torch.cat(image.pooler_output), batch["region_weights"],
                                           batch.get("region_points") if points == "keep" else points)
    return embeds[ids == model.config.region_token_id]


def test_region_points_are_the_metric_lift_with_intrinsics_and_robust_pseudo_3d_without(tiny):
    _, processor = tiny
    batch = encode(processor)
    _, depth = scene()
    lifted = lift_region(depth, Intrinsics.from_dict(K), box=BOXES[0]["box"])
    assert batch["region_points"].shape == (2, 6)
    assert np.allclose(batch["region_points"][0].numpy(), np.concatenate([lifted.center, lifted.size]), atol=1e-5)
    assert abs(batch["region_points"][0, 2] - 1.0) < 0.05 and abs(batch["region_points"][1, 2] - 2.0) < 0.05
    pseudo = encode(processor, intrinsics=False)["region_points"]
    assert torch.isfinite(pseudo).all() and pseudo[0, 2] < pseudo[1, 2]  # nearer box, smaller pseudo depth
    assert "region_points" not in encode(processor, depth=False)


def test_region_evidence_reaches_the_token_at_the_text_scale_and_is_zero_when_unknown(tiny):
    model, processor = tiny
    batch = encode(processor)
    text_norm = model.model.get_input_embeddings().weight.norm(dim=-1).mean()
    with_points = region_embeddings(model, batch)
    without = region_embeddings(model, batch, points=None)
    unknown = region_embeddings(model, batch, points=torch.full((2, 6), float("nan")))
    assert torch.equal(without, unknown)  # NaN evidence adds nothing
    evidence = with_points - without
    assert (evidence.norm(dim=-1) > 0).all()
    for norms in (evidence.norm(dim=-1), without.norm(dim=-1)):  # both at the token embeddings' scale
        assert ((norms > text_norm / 2) & (norms < text_norm * 2)).all()
    moved = batch["region_points"].clone()
    moved[0, 0] += 0.5  # the red box half a metre to the right
    assert not torch.allclose(region_embeddings(model, batch, points=moved)[0], with_points[0])


def test_the_evidence_path_learns_a_region_coordinate_in_a_few_steps(tiny_dir):
    """A linear read-out of the region token learns x from the evidence path alone (vision and LLM frozen)."""
    model, _ = load_model(tiny_dir)
    torch.manual_seed(0)
    encoder = model.model.region_point_encoder
    readout = torch.nn.Linear(model.config.text_config.hidden_size, 1)
    optimiser = torch.optim.Adam([*encoder.parameters(), *readout.parameters()], lr=1e-2)
    evidence = torch.cat([torch.rand(256, 3) * torch.tensor([4.0, 2.0, 6.0]) - torch.tensor([2.0, 1.0, -0.5]),
                          torch.rand(256, 3)], dim=1)
    for _ in range(150):
        loss = (readout(encoder(evidence)).squeeze(-1) - evidence[:, 0]).pow(2).mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    assert loss.item() < 0.01  # x in [-2, 2] m read to ~0.1 m


def test_metric_evidence_is_written_after_each_region_token_when_the_processor_says_so(tiny, tmp_path):
    from sr_real_core.model.processing import SRRealProcessor, evidence_words

    from sr_real_core.model.tiny import tiny_processor

    default = tiny[1]
    assert not default.evidence_text and "measured" not in default.tokenizer.decode(encode(default)["input_ids"][0])
    processor = tiny_processor(default.tokenizer, evidence_text=True)
    batch = encode(processor)
    text = processor.tokenizer.decode(batch["input_ids"][0])
    words = [evidence_words(row) for row in batch["region_points"].numpy()]
    assert words[0].startswith(" (measured: centre ") and words[0] != words[1]
    assert f"red bbox <region>{words[0]} left of the blue bbox <region>{words[1]}?" in text
    centre = [float(value) for value in words[0].split("centre ")[1].split(" m")[0].split(",")]
    assert np.allclose(centre, batch["region_points"][0, :3].numpy(), atol=0.005)
    assert (batch["input_ids"] == processor.region_token_id).sum() == 2  # one region token per region still
    for unwritten in (encode(processor, intrinsics=False), encode(processor, depth=False)):  # not metres / none
        assert "measured" not in processor.tokenizer.decode(unwritten["input_ids"][0])

    processor.save_pretrained(tmp_path)
    assert SRRealProcessor.from_pretrained(tmp_path).evidence_text
    config = json.loads((tmp_path / "processor_config.json").read_text())
    del config["evidence_text"]  # a processor saved before the setting existed reads its text as before
    (tmp_path / "processor_config.json").write_text(json.dumps(config))
    old = SRRealProcessor.from_pretrained(tmp_path)
    assert not old.evidence_text
    assert torch.equal(encode(old)["region_points"], batch["region_points"])
    assert "measured" not in old.tokenizer.decode(encode(old)["input_ids"][0])


def test_checkpoints_without_the_path_load_and_compute_as_before(tiny_dir, tmp_path):
    import shutil

    old = tmp_path / "old"
    shutil.copytree(tiny_dir, old)
    config = json.loads((old / "config.json").read_text())
    del config["region_evidence"]  # a checkpoint written before the field existed
    (old / "config.json").write_text(json.dumps(config))
    from safetensors.torch import load_file, save_file

    weights = {k: v for k, v in load_file(old / "model.safetensors").items()
               if "region_norm" not in k and "region_point_encoder" not in k}
    save_file(weights, old / "model.safetensors", metadata={"format": "pt"})
    model, processor = load_model(old)
    assert not model.config.region_evidence and not hasattr(model.model, "region_point_encoder")
    batch = encode(processor)
    pooled = region_embeddings(model, batch)
    assert torch.equal(pooled, region_embeddings(model, batch, points=None))  # the evidence is ignored
    with torch.no_grad():
        assert torch.isfinite(model(**batch).logits).all()


def test_a_converted_backbone_starts_its_region_gains_at_its_embedding_scale(tiny_dir, tmp_path):
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration, Qwen2_5_VLProcessor

    from sr_real_core.model.tiny import tiny_config, train_tiny_tokenizer

    tokenizer = train_tiny_tokenizer()
    fields = {k: v for k, v in tiny_config(tokenizer).to_dict().items()
              if k not in ("model_type", "region_token_id", "region_evidence", "point_frequencies",
                           "transformers_version")}
    plain = Qwen2_5_VLForConditionalGeneration(Qwen2_5_VLConfig(**fields))
    with torch.no_grad():
        plain.get_input_embeddings().weight.mul_(5.0)  # a backbone whose embeddings are not at 0.02
    plain.save_pretrained(tmp_path)
    _, processor = load_model(tiny_dir)
    Qwen2_5_VLProcessor(image_processor=processor.image_processor, tokenizer=tokenizer,
                        video_processor=processor.video_processor,
                        chat_template=processor.chat_template).save_pretrained(tmp_path)
    model, converted = load_model(tmp_path)
    scale = model.model.get_input_embeddings().weight.pow(2).mean().sqrt()
    assert model.config.region_evidence and not converted.evidence_text
    assert torch.allclose(model.model.region_norm.weight, scale.expand(model.config.text_config.hidden_size))
    assert torch.allclose(model.model.region_point_encoder.norm.weight, model.model.region_norm.weight)
