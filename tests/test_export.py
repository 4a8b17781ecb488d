"""Export to deploy folders and the ONNX Runtime backend, against PyTorch, on the tiny model and a real RGB-D frame.

One LoRA adapter (on a tiny base whose region and 3D modules are randomised, as training would leave them) is
exported through `sr-real export onnx --model ADAPTER --base BASE`; PyTorch references come from the adapter
model itself, so every parity test is also "merge then export equals the adapter model".
"""
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from sr_real_core.backends import DeployFolderError, load_backend
from sr_real_core.backends.host import rope_positions, vision_feeds
from sr_real_core.backends.manifest import MANIFEST_NAME, sha256_file
from sr_real_core.backends.tensorrt import missing_requirements
from sr_real.cli import main
from sr_real_core.geometry import load_depth
from sr_real_core.backends.pytorch import TorchBackend
from sr_real_core.model.loading import load_model
from sr_real_core.model.tiny import write_tiny_model
from test_ros_dds import loopback_env  # noqa: F401 - a fixture

RGBD = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "rgbd" / "open3d_test_data"
pytestmark = pytest.mark.skipif(not RGBD.is_dir(), reason=f"shared data absent: {RGBD}")
K = {"fx": 525.0, "fy": 525.0, "cx": 319.5, "cy": 239.5, "width": 640, "height": 480}
QUESTION = "How far is the chair (red bbox) <region> from the table (blue bbox) <region>?"
REGIONS = [[100, 120, 300, 330], [360, 200, 560, 420]]
NEW_TOKENS = 24
needs_tensorrt = pytest.mark.skipif(bool(missing_requirements()), reason="needs TensorRT and a CUDA GPU")


def randomize(module, seed):
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.1)


@pytest.fixture(scope="module")
def frame(tmp_path_factory):
    folder = tmp_path_factory.mktemp("frame")
    shutil.copy(RGBD / "RGBD" / "color" / "00000.jpg", folder / "rgb.jpg")
    shutil.copy(RGBD / "RGBD" / "depth" / "00000.png", folder / "depth.png")
    (folder / "K.json").write_text(json.dumps(K))
    with Image.open(folder / "rgb.jpg") as image:
        rgb = image.convert("RGB")
    return {"folder": folder, "image": rgb, "depth": load_depth(folder / "depth.png", None)}


@pytest.fixture(scope="module")
def exported(tmp_path_factory, frame):
    """Base checkpoint, LoRA adapter, its merged checkpoint, the deploy folder, and PyTorch references."""
    from peft import LoraConfig, get_peft_model

    root = tmp_path_factory.mktemp("export")
    base_dir, adapter_dir, merged_dir, deploy = (root / n for n in ("base", "adapter", "merged", "deploy"))
    write_tiny_model(root / "tiny")
    model, processor = load_model(root / "tiny")
    randomize(model.model.point_encoder, 1)
    randomize(model.model.region_projector, 2)
    model.save_pretrained(base_dir)
    processor.save_pretrained(base_dir)
    config = LoraConfig(r=4, lora_alpha=8, target_modules=r".*language_model.*\.(q_proj|v_proj|down_proj)",
                        init_lora_weights=False)
    adapted = get_peft_model(model, config).eval()
    adapted.save_pretrained(adapter_dir)
    batch = prompt_batch(processor, frame)
    with torch.no_grad():
        image = adapted.base_model.model.model.get_image_features(batch["pixel_values"], batch["image_grid_thw"],
                                                                  image_points=batch["image_points"])
        reference = {"image_embeds": torch.cat(image.pooler_output).numpy(),
                     "logits": adapted(**batch).logits[:, -1].numpy(),
                     "tokens": TorchBackend(adapted).generate(batch, NEW_TOKENS)}
    adapted.merge_and_unload().save_pretrained(merged_dir)
    processor.save_pretrained(merged_dir)
    assert main(["export", "onnx", "--model", str(adapter_dir), "--base", str(base_dir), "--out", str(deploy)]) == 0
    return {"root": root, "base": base_dir, "merged": merged_dir, "deploy": deploy, "batch": batch, **reference}


def prompt_batch(processor, frame):
    return processor(images=[frame["image"]], text=[processor.chat_prompt(QUESTION)],
                     regions=[[{"box": box} for box in REGIONS]], depths=[frame["depth"]], intrinsics=[K])


def ask(capsys, model, frame, *extra):
    args = ["ask", QUESTION, "--model", str(model), "--image", str(frame["folder"] / "rgb.jpg"), "--depth",
            str(frame["folder"] / "depth.png"), "--intrinsics", str(frame["folder"] / "K.json"),
            "--max-new-tokens", str(NEW_TOKENS), *extra]
    for box in REGIONS:
        args += ["--region", ",".join(map(str, box))]
    code = main(args)
    out, err = capsys.readouterr()
    return code, (json.loads(out) if code == 0 else None), err


def test_deploy_folder_is_complete_and_describes_itself(exported):
    deploy = exported["deploy"]
    manifest = json.loads((deploy / MANIFEST_NAME).read_text())
    assert {"vision.onnx", "embed.onnx", "decoder.onnx", "tokenizer.json", "chat_template.jinja",
            "processor_config.json", "config.json"} <= set(manifest["files"])
    assert all(sha256_file(deploy / name) == digest for name, digest in manifest["files"].items())
    assert manifest["source"]["weights_sha256"] == {"model.safetensors": sha256_file(exported["base"] / "model.safetensors")}
    assert "adapter_model.safetensors" in manifest["source"]["adapter_sha256"]
    assert (manifest["opset"], manifest["precision"], manifest["backend"]) == (18, "fp32", "onnxruntime")
    decoder = manifest["graphs"]["decoder"]
    assert decoder["inputs"]["past_key_0"]["shape"] == ["batch", 2, "past_length", 32]
    assert decoder["outputs"]["present_key_0"]["shape"] == ["batch", 2, "sequence + past_length", 32]
    assert manifest["graphs"]["vision"]["inputs"]["pixel_values"]["shape"] == ["patches", 1176]
    assert sorted(p.name for p in exported["root"].iterdir() if p.name.startswith(".")) == []  # no staging left


def test_vision_features_and_logits_match_pytorch(exported):
    _, backend = load_backend(exported["deploy"])
    batch, model = exported["batch"], backend.decoder.model
    image_embeds, region_embeds = backend.run("vision", vision_feeds(batch, model))
    assert np.abs(image_embeds - exported["image_embeds"]).max() < 1e-4
    assert region_embeds.shape == (2, model["hidden_size"])
    positions, _ = rope_positions(batch["input_ids"].numpy(), batch["attention_mask"].numpy(),
                                  batch["image_grid_thw"], model)
    empty = np.zeros((1, model["num_kv_heads"], 0, model["head_dim"]), np.float32)
    logits = backend.run("decoder", {"inputs_embeds": backend.decoder.prompt_embeddings(batch), "position_ids":
                                     positions, "attention_mask": batch["attention_mask"].numpy(),
                                     **dict.fromkeys(backend.decoder.past_names, empty)})[0]
    assert np.abs(logits - exported["logits"]).max() < 1e-4
    assert backend.generate(batch, NEW_TOKENS) == exported["tokens"]


def test_rope_positions_and_padded_batches_match_transformers(exported, frame):
    model, processor = load_model(exported["merged"])
    small = frame["image"].resize((320, 240))
    texts = [processor.chat_prompt("Where is it?", num_images=2), processor.chat_prompt(QUESTION)]
    batch = processor(images=[frame["image"], small, small], text=texts, padding=True, padding_side="left",
                      regions=[[], [{"box": [10, 10, 100, 100]}, {"box": [120, 60, 300, 200]}]])
    _, backend = load_backend(exported["deploy"])
    positions, _ = rope_positions(batch["input_ids"].numpy(), batch["attention_mask"].numpy(),
                                  batch["image_grid_thw"], backend.decoder.model)
    expected, _ = model.model.get_rope_index(batch["input_ids"], batch["mm_token_type_ids"],
                                             image_grid_thw=batch["image_grid_thw"],
                                             attention_mask=batch["attention_mask"])
    mask = batch["attention_mask"].numpy().astype(bool)
    assert (positions[:, mask] == expected.numpy()[:, mask]).all()
    assert backend.generate(batch, 12) == TorchBackend(model).generate(batch, 12)


def test_a_constrained_answer_is_the_same_on_both_runtimes(exported):
    """From an opened <answer> on, both runtimes take the same yes/no tokens: the host loop and transformers'
    logits processor apply one constraint (`sr_real_core.constrained`), and it changes what is generated."""
    import re

    from sr_real_core.constrained import AnswerConstraint, token_texts

    model, processor = load_model(exported["merged"])
    texts, batch = token_texts(processor.tokenizer), exported["batch"]
    _, backend = load_backend(exported["deploy"])
    opened = lambda: AnswerConstraint(texts, ["yesno"], [QUESTION], prefix="<answer>")  # noqa: E731
    tokens = backend.generate(batch, 12, opened())
    assert tokens == TorchBackend(model).generate(batch, 12, opened())
    assert re.fullmatch(r"\s*(yes|no)\s*</answer>.*", processor.batch_decode(tokens)[0], re.S)
    assert tokens != backend.generate(batch, 12)  # the free random model writes something else


def test_sr_real_ask_gives_the_same_answer_and_centres(exported, frame, capsys):
    code, torch_answer, _ = ask(capsys, exported["merged"], frame)
    assert code == 0
    code, onnx_answer, _ = ask(capsys, exported["deploy"], frame)
    assert code == 0
    for key in ("completion", "answer", "path", "detections", "value_m", "well_formed"):
        assert onnx_answer[key] == torch_answer[key], key


def test_a_missing_or_corrupt_file_is_refused_by_name(exported, frame, capsys, tmp_path):
    broken = tmp_path / "deploy"
    shutil.copytree(exported["deploy"], broken)
    (broken / "tokenizer.json").unlink()
    code, _, err = ask(capsys, broken, frame)
    assert code == 2 and "tokenizer.json is missing" in err and len(err.strip().splitlines()) == 1
    shutil.copy(exported["deploy"] / "tokenizer.json", broken / "tokenizer.json")
    with open(broken / "decoder.onnx", "r+b") as handle:
        handle.seek(1000)
        handle.write(b"\x00\x01\x02")
    code, _, err = ask(capsys, broken, frame)
    assert code == 2 and "decoder.onnx is corrupt" in err and len(err.strip().splitlines()) == 1
    code, _, err = ask(capsys, exported["deploy"], frame, "--backend", "torch")
    assert code == 2 and "is a deploy folder" in err
    code, _, err = ask(capsys, exported["merged"], frame, "--backend", "onnxruntime")
    assert code == 2 and "is not one (no deploy.json)" in err


def test_node_start_up_fails_with_the_reason_before_any_subscription(exported):
    from sr_real_core.ros.config import SpatialQueryConfig
    from sr_real_core.ros.service import load_engine

    engine = load_engine(SpatialQueryConfig(model=str(exported["deploy"]), backend="onnxruntime", max_new_tokens=16))
    assert type(engine.backend).__name__ == "OnnxRuntimeBackend"
    if missing_requirements():
        with pytest.raises(DeployFolderError, match="backend tensorrt cannot run here: missing"):
            load_engine(SpatialQueryConfig(model=str(exported["deploy"]), backend="tensorrt"))
    with pytest.raises(DeployFolderError, match="is a deploy folder"):
        load_engine(SpatialQueryConfig(model=str(exported["deploy"]), backend="torch"))


def test_preflight_checks_pass_and_fp16_gives_the_same_answer(exported, capsys):
    fp16 = exported["root"] / "deploy-fp16"
    assert main(["export", "onnx", "--model", str(exported["merged"]), "--precision", "fp16", "--out", str(fp16)]) == 0
    capsys.readouterr()
    assert main(["export", "check", str(exported["deploy"]), "--fp16", str(fp16)]) == 0
    lines = capsys.readouterr().out.splitlines()
    checks = {line.split(":")[0].split(None, 2)[2] for line in lines}
    assert {"onnx checker", "strict shape inference", "standard-domain ops only", "TensorRT op audit",
            "constant folding (onnx-graphsurgeon)", "FP16 range scan", "FP16 vs FP32"} <= checks
    assert not [line for line in lines if line.startswith("FAIL")], lines
    assert any(line.startswith("PASS all      FP16 vs FP32") for line in lines), lines


def test_the_audit_flags_ops_tensorrt_rejects_and_custom_domains(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    from sr_real.export.check import structure_checks

    nodes = [helper.make_node("IsInf", ["x"], ["inf"]), helper.make_node("Cast", ["inf"], ["y"], to=TensorProto.FLOAT),
             helper.make_node("FusedGelu", ["y"], ["z"], domain="com.example")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
                              [helper.make_tensor_value_info("z", TensorProto.FLOAT, [2])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18), helper.make_opsetid("com.example", 1)])
    onnx.save(model, tmp_path / "bad.onnx")
    findings = {f.check: f for f in structure_checks(tmp_path / "bad.onnx", "bad")}
    assert findings["TensorRT op audit"].status == "fail" and "IsInf" in findings["TensorRT op audit"].detail
    assert findings["standard-domain ops only"].status == "fail"
    assert "com.example::FusedGelu" in findings["standard-domain ops only"].detail


def test_int8_decoder_is_smaller_and_close(exported):
    from sr_real.export.variants import quantize_folder

    int8 = quantize_folder(exported["deploy"], exported["root"] / "deploy-int8")
    assert (int8 / "decoder.onnx").stat().st_size < 0.5 * (exported["deploy"] / "decoder.onnx").stat().st_size
    _, backend = load_backend(int8)
    batch, model = exported["batch"], backend.decoder.model
    positions, _ = rope_positions(batch["input_ids"].numpy(), batch["attention_mask"].numpy(),
                                  batch["image_grid_thw"], model)
    empty = np.zeros((1, model["num_kv_heads"], 0, model["head_dim"]), np.float32)
    logits = backend.run("decoder", {"inputs_embeds": backend.decoder.prompt_embeddings(batch), "position_ids":
                                     positions, "attention_mask": batch["attention_mask"].numpy(),
                                     **dict.fromkeys(backend.decoder.past_names, empty)})[0]
    error = np.abs(logits - exported["logits"]).max() / np.abs(exported["logits"]).max()
    assert 0 < error < 0.1  # quantized: not exact, yet close
    with pytest.raises(ValueError, match="ONNX Runtime only"):
        from sr_real.export.tensorrt_build import build_engines

        build_engines(int8)


def test_tensorrt_says_what_is_missing(exported, capsys):
    if not missing_requirements():
        pytest.skip("TensorRT and a GPU are here: test_tensorrt_engines_match_onnxruntime runs instead")
    assert main(["export", "tensorrt", str(exported["deploy"])]) == 2
    err = capsys.readouterr().err
    assert err.startswith("sr-real export tensorrt: error: cannot build TensorRT engines here: missing")
    assert "TensorRT Python package" in err and len(err.strip().splitlines()) == 1


@needs_tensorrt
def test_tensorrt_engines_match_onnxruntime(exported, frame, capsys):
    fp16 = exported["root"] / "deploy-fp16-trt"
    assert main(["export", "onnx", "--model", str(exported["merged"]), "--precision", "fp16", "--out", str(fp16)]) == 0
    assert main(["export", "tensorrt", str(fp16), "--max-sequence", "512", "--max-image-tokens", "256"]) == 0
    capsys.readouterr()
    code, trt_answer, err = ask(capsys, fp16, frame, "--backend", "tensorrt")
    assert code == 0, err
    code, ort_answer, _ = ask(capsys, fp16, frame, "--backend", "onnxruntime")
    assert trt_answer["answer"] == ort_answer["answer"] and trt_answer["detections"] == ort_answer["detections"]
    sidecar = json.loads((fp16 / "engines" / "engines.json").read_text())
    sidecar["platform"]["gpu"] = "another GPU"
    (fp16 / "engines" / "engines.json").write_text(json.dumps(sidecar))
    code, _, err = ask(capsys, fp16, frame, "--backend", "tensorrt")
    assert code == 2 and "built elsewhere" in err


def test_the_dds_node_answers_identically_with_backend_onnxruntime(exported, loopback_env):
    from test_ros_dds import ANSWER_S, HEIGHT, WIDTH, connect, domain_for, start_node, stop_node
    from test_ros_dds import ask as ask_node

    nodes = {}
    for offset, (name, model, backend) in enumerate((("torch", exported["merged"], "torch"),
                                                     ("onnxruntime", exported["deploy"], "onnxruntime"))):
        domain = domain_for(40 + offset)
        command = [sys.executable, "-m", "sr_real.cli", "serve", "--transport", "dds", "--loopback",
                   "--domain-id", str(domain), "--model", str(model), "-p", f"backend={backend}",
                   "-p", "max_new_tokens=16", "--duration", str(2 * ANSWER_S)]
        nodes[name] = (domain, start_node(command, loopback_env))
    answers, outputs = {}, {}
    try:
        rgb = np.random.default_rng(1).integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)
        depth = np.full((HEIGHT, WIDTH), 1800, np.uint16)
        query = json.dumps({"question": "How far is the chair (red bbox) <region>?", "regions": [[10, 10, 30, 40]],
                            "path": "dtr"})
        for name, (domain, node) in nodes.items():
            answers[name] = ask_node(connect(domain, node), query, rgb, depth)
    finally:
        for name, (_, node) in nodes.items():
            outputs[name] = stop_node(node)
    assert answers["onnxruntime"]["status"] == "ok", outputs["onnxruntime"]
    for key in ("completion", "answer", "path", "detections"):
        assert answers["onnxruntime"].get(key) == answers["torch"].get(key), key
