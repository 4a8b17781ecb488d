"""SR-REAL model, processor and loading, on the tiny checkpoint (CPU, one checkpoint per module)."""
import numpy as np
import pytest
import torch
from PIL import Image
from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration, Qwen2_5_VLProcessor

from sr_real_core.geometry import Intrinsics
from sr_real_core.model.depth_estimation import MonocularDepthEstimator, relative_depth_from_disparity
from sr_real_core.model.loading import load_model
from sr_real_core.model.processing import box_weights, mask_weights
from sr_real_core.model.tiny import tiny_config, train_tiny_tokenizer, write_tiny_model

K = {"fx": 100.0, "fy": 100.0, "cx": 55.5, "cy": 41.5, "width": 112, "height": 84}


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return write_tiny_model(tmp_path_factory.mktemp("tiny"), seed=0)


@pytest.fixture(scope="module")
def tiny(tiny_dir):
    return load_model(tiny_dir)


def image(height=84, width=112, seed=0):
    return Image.fromarray(np.random.default_rng(seed).integers(0, 255, (height, width, 3), dtype=np.uint8))


def depth_map(height=84, width=112, seed=0):
    return np.random.default_rng(seed).uniform(0.5, 4.0, (height, width)).astype(np.float32)


def prompt(processor, question, num_images=1):
    return processor.chat_prompt(question, num_images=num_images)


def logits(model, batch):
    with torch.no_grad():
        return model(**batch).logits


def randomize(module, seed=1):
    """Make a zero-initialised block non-trivial, as training would."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.1)


@pytest.fixture
def trained_looking(tiny):
    """The tiny model with its new blocks randomised; restored afterwards."""
    model, processor = tiny
    saved = {k: v.clone() for k, v in model.state_dict().items()}
    randomize(model.model.point_encoder, 1)
    randomize(model.model.region_projector, 2)
    yield model, processor
    model.load_state_dict(saved)


# ------------------------------------------------------------------------------------------- tiny checkpoint


def test_tiny_checkpoint_is_small_and_complete(tiny_dir, tiny):
    model, processor = tiny
    assert 1e6 < sum(p.numel() for p in model.parameters()) < 1e7
    assert {"config.json", "model.safetensors", "tokenizer.json", "processor_config.json"} <= {
        p.name for p in tiny_dir.iterdir()}
    tokenizer = processor.tokenizer
    assert 1000 < len(tokenizer) <= model.config.text_config.vocab_size
    for token in ("<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|image_pad|>", "<region>"):
        assert len(tokenizer(token)["input_ids"]) == 1
    text = '<think>1.25 m</think>\n<answer>B</answer> <3d_box center="0.02,1.06,2.03">'
    assert tokenizer.decode(tokenizer(text)["input_ids"]) == text


def test_tiny_checkpoint_is_deterministic_for_a_seed(tiny_dir, tmp_path):
    again = write_tiny_model(tmp_path / "again", seed=0)
    other = write_tiny_model(tmp_path / "other", seed=1)
    for name in ("model.safetensors", "tokenizer.json", "config.json"):
        assert (again / name).read_bytes() == (tiny_dir / name).read_bytes()
    assert (other / "model.safetensors").read_bytes() != (tiny_dir / "model.safetensors").read_bytes()


# ------------------------------------------------------------------------------------------------ processor


def test_processor_shapes_for_several_images_and_regions(tiny):
    _, processor = tiny
    texts = [prompt(processor, "Is <region> left of <region>?", num_images=2),
             prompt(processor, "How tall is <region>?")]
    images = [image(84, 112), image(56, 56, 1), image(56, 84, 2)]
    mask = np.zeros((56, 84), bool)
    mask[10:30, 20:60] = True
    regions = [[{"image_index": 0, "box": [0, 0, 30, 30]}, {"image_index": 1, "box": [28, 28, 56, 56]}],
               [{"image_index": 0, "mask": mask}]]
    batch = processor(images=images, text=texts, regions=regions, depths=[depth_map(), None, None],
                      intrinsics=[K, None, None], padding=True)
    tokens = [int(t * h * w) // 4 for t, h, w in batch["image_grid_thw"]]
    assert tokens == [12, 4, 6]  # 112x84 -> 4x3 merged tokens, 56x56 -> 2x2, 84x56 -> 3x2
    assert batch["region_weights"].shape == (3, sum(tokens))
    spans = [(0, 12), (12, 16), (16, 22)]
    for row, (start, end) in zip(batch["region_weights"], spans):  # each region lives in its own image only
        assert row[start:end].sum() > 0 and row.sum() == row[start:end].sum()
    assert batch["region_weights"][1, 12:16].tolist() == [0, 0, 0, 1]  # the bottom-right quarter of 56x56
    points = batch["image_points"]
    assert points.shape == (sum(tokens), 3)
    assert torch.isfinite(points[:12]).all() and torch.isnan(points[12:]).all()
    assert (batch["input_ids"] == processor.region_token_id).sum() == 3


def test_box_weights_follow_the_original_pixels():
    # A 100x70 image on a 4x3 token grid: each cell is 25x23.3 original pixels, whatever the resize.
    weights = box_weights((25, 0, 50, 70 / 3), height=70, width=100, grid_h=3, grid_w=4)
    assert np.allclose(weights, np.eye(12)[1])
    half = box_weights((0, 0, 12.5, 70), height=70, width=100, grid_h=3, grid_w=4).reshape(3, 4)
    assert np.allclose(half[:, 0], 0.5) and np.allclose(half[:, 1:], 0)
    mask = np.zeros((70, 100))
    mask[:, :25] = 1
    assert np.allclose(mask_weights(mask, 70, 100, 3, 4).reshape(3, 4)[:, 0], 1)


def test_metric_points_are_the_mean_of_each_cell(tiny):
    _, processor = tiny
    depth = np.full((84, 112), 2.0, np.float32)
    batch = processor(images=[image()], text=[prompt(processor, "Where?")], depths=[depth], intrinsics=[K])
    points = batch["image_points"].numpy().reshape(3, 4, 3)
    u = np.arange(28, 56)  # the second token column covers pixels 28..55
    assert points[1, 1, 2] == pytest.approx(2.0)
    assert points[1, 1, 0] == pytest.approx(((u - K["cx"]) * 2.0 / K["fx"]).mean(), rel=1e-5)
    # Intrinsics calibrated at twice the resolution are rescaled to the image.
    double = Intrinsics(fx=200, fy=200, cx=111.5, cy=83.5, width=224, height=168)
    rescaled = processor(images=[image()], text=[prompt(processor, "Where?")], depths=[depth], intrinsics=[double])
    assert torch.allclose(rescaled["image_points"], batch["image_points"], atol=1e-5)


def test_pseudo_3d_without_intrinsics_and_nothing_where_depth_is_invalid(tiny):
    _, processor = tiny
    depth = np.full((84, 112), 3.0, np.float32)
    depth[:, 56:] = np.nan
    batch = processor(images=[image()], text=[prompt(processor, "Where?")], depths=[depth])
    points = batch["image_points"].reshape(3, 4, 3)
    assert torch.allclose(points[:, :2, 2], torch.ones(3, 2))  # z = 2 * d / max(d) - 1
    assert (points[:, :2, 0] < 0).all() and torch.isnan(points[:, 2:]).all()


# ---------------------------------------------------------------------------------------------------- model


def test_logits_equal_the_plain_backbone_at_init(tiny, tmp_path):
    _, tiny_processor = tiny
    tokenizer = train_tiny_tokenizer()
    fields = {k: v for k, v in tiny_config(tokenizer).to_dict().items()
              if k not in ("model_type", "region_token_id", "point_frequencies", "transformers_version")}
    torch.manual_seed(0)
    plain = Qwen2_5_VLForConditionalGeneration(Qwen2_5_VLConfig(**fields)).eval()
    plain.save_pretrained(tmp_path)
    Qwen2_5_VLProcessor(image_processor=tiny_processor.image_processor, tokenizer=tokenizer,
                        video_processor=tiny_processor.video_processor,
                        chat_template=tiny_processor.chat_template).save_pretrained(tmp_path)

    model, processor = load_model(tmp_path)
    assert type(model).__name__ == "SRRealForConditionalGeneration" and model.config.model_type == "sr_real"
    batch = processor(images=[image()], text=[prompt(processor, "How far is the chair?")], depths=[depth_map()],
                      intrinsics=[K])
    assert "image_points" in batch
    plain_batch = {k: v for k, v in batch.items() if k != "image_points"}
    assert torch.equal(logits(model, batch), logits(plain, plain_batch))


def test_depth_encoding_changes_image_features_and_is_zero_without_depth(trained_looking):
    model, processor = trained_looking
    depth = depth_map()
    depth[:28] = np.nan  # the first token row has no valid pixel
    batch = processor(images=[image()], text=[prompt(processor, "Where?")], depths=[depth], intrinsics=[K])

    def features(points):
        with torch.no_grad():
            out = model.model.get_image_features(batch["pixel_values"], batch["image_grid_thw"], image_points=points)
        return torch.cat(out.pooler_output)

    plain, encoded = features(None), features(batch["image_points"])
    assert torch.equal(encoded[:4], plain[:4])  # no valid depth: nothing added
    assert not torch.allclose(encoded[4:], plain[4:])
    assert torch.equal(features(torch.full_like(batch["image_points"], float("nan"))), plain)
    nan_only = processor(images=[image()], text=[prompt(processor, "Where?")], depths=[np.full((84, 112), np.nan)],
                         intrinsics=[K])
    without = processor(images=[image()], text=[prompt(processor, "Where?")])
    assert torch.equal(logits(model, nan_only), logits(model, without))


def test_region_features_change_the_output_and_are_ignored_when_absent(trained_looking):
    model, processor = trained_looking
    text = [prompt(processor, "How tall is the chair (red bbox) <region>?")]
    left = processor(images=[image()], text=text, regions=[[{"box": [0, 0, 28, 28]}]])
    right = processor(images=[image()], text=text, regions=[[{"box": [84, 56, 112, 84]}]])
    assert not torch.allclose(logits(model, left), logits(model, right))

    no_region = processor(images=[image()], text=[prompt(processor, "How tall is the chair?")])
    before = logits(model, no_region)
    randomize(model.model.region_projector, seed=3)
    assert torch.equal(logits(model, no_region), before)


def test_save_and_load_round_trip_is_bit_exact(trained_looking, tmp_path):
    model, processor = trained_looking
    model.save_pretrained(tmp_path)
    processor.save_pretrained(tmp_path)
    assert not list(tmp_path.glob("*.bin"))
    loaded, loaded_processor = load_model(tmp_path)
    kwargs = dict(text=[prompt(processor, "Is <region> behind <region>?")], regions=[[
        {"box": [0, 0, 50, 40]}, {"box": [60, 30, 112, 84]}]], depths=[depth_map()], intrinsics=[K])
    batch, loaded_batch = processor(images=[image()], **kwargs), loaded_processor(images=[image()], **kwargs)
    assert all(torch.equal(batch[k], loaded_batch[k]) for k in batch)
    assert torch.equal(logits(model, batch), logits(loaded, loaded_batch))


def test_lora_merge_gives_the_same_logits(tiny_dir):
    from peft import LoraConfig, get_peft_model

    model, processor = load_model(tiny_dir)
    batch = processor(images=[image()], text=[prompt(processor, "Is the chair <region> big?")],
                      regions=[[{"box": [10, 10, 60, 60]}]], depths=[depth_map()], intrinsics=[K])
    base = logits(model, batch)
    config = LoraConfig(r=4, lora_alpha=8, target_modules=r".*language_model.*\.(q_proj|v_proj|down_proj)",
                        init_lora_weights=False, modules_to_save=["point_encoder", "region_projector"])
    peft_model = get_peft_model(model, config).eval()
    adapted = logits(peft_model, batch)
    assert not torch.allclose(adapted, base)
    merged = peft_model.merge_and_unload()
    assert type(merged).__name__ == "SRRealForConditionalGeneration"
    assert torch.allclose(logits(merged, batch), adapted, atol=1e-5)


def test_gradient_checkpointing_runs_a_backward(tiny_dir):
    model, processor = load_model(tiny_dir)
    model.train()
    model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    batch = processor(images=[image()], text=[prompt(processor, "How far is <region>?")],
                      regions=[[{"box": [0, 0, 40, 40]}]], depths=[depth_map()], intrinsics=[K])
    loss = model(**batch, labels=batch["input_ids"]).loss
    loss.backward()
    for module in (model.model.region_projector, model.model.point_encoder, model.model.visual.blocks[0],
                   model.model.language_model.layers[0]):
        grads = [p.grad for p in module.parameters()]
        assert all(g is not None and torch.isfinite(g).all() for g in grads)
        assert any(g.abs().sum() > 0 for g in grads)


def test_greedy_generation_is_deterministic_and_batches_with_padding(trained_looking):
    model, processor = trained_looking
    texts = [prompt(processor, "Is the chair (red bbox) <region> left of the table (blue bbox) <region>?"),
             prompt(processor, "How tall is the lamp <region>?")]
    images = [image(84, 112), image(56, 56, 1)]
    regions = [[{"box": [0, 0, 30, 30]}, {"box": [50, 40, 112, 84]}], [{"box": [10, 10, 40, 50]}]]
    depths = [depth_map(), None]

    def generate(batch):
        out = model.generate(**batch, max_new_tokens=6, do_sample=False, output_logits=True,
                             return_dict_in_generate=True)
        return out.sequences[:, batch["input_ids"].shape[1]:], torch.stack(out.logits, dim=1)

    batch = processor(images=images, text=texts, regions=regions, depths=depths, intrinsics=[K, None],
                      padding=True, padding_side="left")
    tokens, step_logits = generate(batch)
    again, _ = generate(batch)
    assert torch.equal(tokens, again)
    for i in range(2):
        single = processor(images=[images[i]], text=[texts[i]], regions=[regions[i]], depths=[depths[i]],
                           intrinsics=[[K, None][i]])
        single_tokens, single_logits = generate(single)
        assert torch.equal(single_tokens[0], tokens[i])
        assert torch.allclose(single_logits[0], step_logits[i], atol=1e-4)


# --------------------------------------------------------------------------------------------------- errors


def test_clear_errors(tiny, tmp_path):
    _, processor = tiny
    text = [prompt(processor, "How tall is <region>?")]
    with pytest.raises(ValueError, match="not a box inside the 112x84 image"):
        processor(images=[image()], text=text, regions=[[{"box": [100, 10, 130, 40]}]])
    with pytest.raises(ValueError, match="refers to image 1"):
        processor(images=[image()], text=text, regions=[[{"image_index": 1, "box": [0, 0, 10, 10]}]])
    with pytest.raises(ValueError, match="1 <region> tokens but 0 regions"):
        processor(images=[image()], text=text)
    with pytest.raises(ValueError, match=r"depth map of image 0 has shape \(42, 56\)"):
        processor(images=[image()], text=[prompt(processor, "Where?")], depths=[np.ones((42, 56))])
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ValueError, match="missing: safetensors weights, tokenizer, image processor config"):
        load_model(tmp_path)
    with pytest.raises(FileNotFoundError, match="neither a checkpoint directory nor in the local"):
        load_model("no-such-org/no-such-model")


# ---------------------------------------------------------------------------------------- depth estimation


def test_monocular_depth_estimator_gives_relative_depth(tmp_path):
    from transformers import DepthAnythingConfig, DepthAnythingForDepthEstimation, Dinov2Config, DPTImageProcessor

    with pytest.raises(FileNotFoundError, match="no depth-estimation checkpoint"):
        MonocularDepthEstimator(tmp_path / "absent")
    backbone = Dinov2Config(hidden_size=32, num_hidden_layers=4, num_attention_heads=2, intermediate_size=64,
                            image_size=56, patch_size=14, out_indices=[1, 2, 3, 4], reshape_hidden_states=False)
    config = DepthAnythingConfig(backbone_config=backbone, reassemble_hidden_size=32, fusion_hidden_size=16,
                                 neck_hidden_sizes=[8, 16, 32, 64], head_hidden_size=8)
    DepthAnythingForDepthEstimation(config).save_pretrained(tmp_path)
    image_processor = DPTImageProcessor(size={"height": 56, "width": 56}, keep_aspect_ratio=True, ensure_multiple_of=14)
    image_processor.save_pretrained(tmp_path)
    estimator = MonocularDepthEstimator(tmp_path)
    depth = estimator(image(60, 80))
    assert not estimator.metric and depth.shape == (60, 80) and depth.dtype == np.float32
    valid = depth[np.isfinite(depth)]
    assert valid.size and valid.max() == pytest.approx(1.0) and (valid > 0).all()


def test_relative_depth_from_disparity():
    depth = relative_depth_from_disparity(np.array([[4.0, 2.0], [1.0, 0.0]]))
    assert np.allclose(depth[:1], [[0.25, 0.5]]) and depth[1, 0] == 1.0 and np.isnan(depth[1, 1])
