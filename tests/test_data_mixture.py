"""Training mixtures: scene-disjoint splits, TRL-ready records that load with `datasets`, clear config errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from datasets import load_dataset

from sr_real.cli import main
from sr_real_core.data.mixture import SFT_KINDS, ConfigError, MixtureConfig, build_mixture, load_mixture, split_scenes
from sr_real_core.data.synth import SynthConfig, synthesize
from sr_real_core.grammar import Detection, build_prompt, parse_completion, render_dtr, render_lor
from sr_real_core.marks import REGION_TOKEN
from sr_real_core.rewards import make_accuracy_reward, make_detection_reward

REPO = Path(__file__).resolve().parents[1]
SFT_TOTAL = 40


@pytest.fixture(scope="module")
def scenes_file(tmp_path_factory):
    out = tmp_path_factory.mktemp("mixture-scenes")
    return synthesize(SynthConfig(num_scenes=4, seed=5, width=160, height=120, room_fraction=0.25), out, progress=False)


def _config_dict(scenes_file, out_dir, **overrides):
    config = {"scenes": [str(scenes_file)], "out_dir": str(out_dir), "seed": 1, "eval_fraction": 0.25,
              "qa": {"per_scene": 8}, "sft": {"total": SFT_TOTAL}}
    return config | overrides


@pytest.fixture(scope="module")
def mixture(scenes_file, tmp_path_factory):
    out = tmp_path_factory.mktemp("mixture")
    config_path = out / "mixture.yaml"
    config_path.write_text(yaml.safe_dump(_config_dict(scenes_file, out / "data")))
    assert main(["data", "build", "--config", str(config_path)]) == 0
    root = out / "data"
    files = {name: [json.loads(line) for line in (root / f"{name}.jsonl").read_text().splitlines()]
             for name in ("sft_train", "sft_eval", "rl_train", "rl_eval")}
    return root, files, json.loads((root / "manifest.json").read_text())


def test_splits_are_disjoint_by_scene(mixture):
    _, files, manifest = mixture
    train, held_out = set(manifest["scenes"]["train"]), set(manifest["scenes"]["eval"])
    assert train and held_out and not train & held_out and len(train | held_out) == 4
    for name, records in files.items():
        expected = held_out if name.endswith("eval") else train
        assert {r["scene_id"] for r in records} <= expected, name


def test_split_is_stable_when_scenes_are_added():
    ids = [f"scene-{i}" for i in range(2000)]
    small, large = split_scenes(ids[:1000], 0.3, seed=0), split_scenes(ids, 0.3, seed=0)
    assert small["eval"] <= large["eval"] and small["train"] <= large["train"]
    assert 0.25 < len(large["eval"]) / len(ids) < 0.35
    assert small == split_scenes(list(reversed(ids[:1000])), 0.3, seed=0)
    assert split_scenes(ids, 0.3, seed=1) != large


def test_tiny_splits_keep_a_scene_on_each_side():
    assert len(split_scenes(["a", "b"], 0.01, seed=0)["eval"]) == 1
    assert len(split_scenes(["a", "b"], 0.99, seed=0)["train"]) == 1
    assert split_scenes(["a", "b", "c"], 0.0, seed=0)["eval"] == set()


def test_manifest_counts_match_the_files(mixture):
    _, files, manifest = mixture
    assert manifest["counts"] == {name: len(records) for name, records in files.items()}
    assert sum(manifest["per_kind"]["sft_train"].values()) == len(files["sft_train"])
    assert sum(manifest["per_category"]["rl_train"].values()) == len(files["rl_train"])


def test_sft_train_follows_the_mix(mixture):
    _, files, manifest = mixture
    mix = manifest["config"]["sft"]["mix"]
    counts = manifest["per_kind"]["sft_train"]
    assert set(counts) == set(SFT_KINDS)
    for kind, weight in mix.items():
        assert counts[kind] <= round(SFT_TOTAL * weight / sum(mix.values()))
    assert counts["lor_cot"] == round(SFT_TOTAL * mix["lor_cot"])  # plenty of questions: not capped


def test_sft_records_are_trl_conversations(mixture):
    root, files, _ = mixture
    for record in files["sft_train"] + files["sft_eval"]:
        user, assistant = record["messages"]
        assert user["role"] == "user" and assistant["role"] == "assistant"
        assert user["content"].count(REGION_TOKEN) == len(record["regions"])
        assert (root / record["depth"]).is_file() and record["intrinsics"]["width"] == 160
        assert all((root / image).is_file() for image in record["images"])
        if record["kind"] in ("lor_cot", "dtr_cot", "grounding_3d", "grounding_2d"):
            parsed = parse_completion(assistant["content"])
            expected_path = "dtr" if record["kind"] in ("dtr_cot", "grounding_3d") else "lor"
            assert parsed.well_formed and parsed.path == expected_path, record["id"]
        if record["kind"] in ("lor_cot", "dtr_cot"):
            path = record["kind"][:3]
            question = user["content"].split("\n\n", 1)[0]
            assert user["content"] == build_prompt(question, path, _answer_type(record["category"]))


def _answer_type(category):
    if category.endswith("_predicate"):
        return "yesno"
    if category.endswith("_choice"):
        return "choice"
    return "direction" if category == "direction" else "numeric"


def test_rl_truth_columns_score_with_the_rewards(mixture):
    """Completions that state each record's answer (and its gt centres) get full accuracy and detection."""
    _, files, _ = mixture
    records = files["rl_train"] + files["rl_eval"]
    completions = []
    for r in records:
        think = f"So the answer is {r['answer']}."
        if r["path"] == "dtr":
            detections = [Detection("object", g["ref"], tuple(g["center"])) for g in r["gt_centers"]]
            completions.append(render_dtr(detections, think, r["answer"]))
        else:
            completions.append(render_lor(think, r["answer"]))
    assert all(r["prompt"][0]["content"] == build_prompt(r["question"], r["path"], r["answer_type"]) for r in records)
    columns = {key: [r[key] for r in records] for key in ("path", "solution", "answer_type", "gt_centers")}
    assert make_accuracy_reward()(completions, **columns) == pytest.approx([1.0] * len(records))
    dtr = [i for i, r in enumerate(records) if r["path"] == "dtr"]
    assert dtr and all(r["regions"] for r in (records[i] for i in dtr))
    detection = make_detection_reward()([completions[i] for i in dtr], **{k: [v[i] for i in dtr] for k, v in columns.items()})
    assert detection == pytest.approx([1.0] * len(dtr))


def test_records_load_with_datasets_and_feed_trl(mixture):
    root, files, _ = mixture
    for name in files:
        dataset = load_dataset("json", data_files=str(root / f"{name}.jsonl"), split="train")
        assert len(dataset) == len(files[name])
    sft = load_mixture(root, "sft_train")
    assert sft[0]["images"][0].size == (160, 120) and sft[0]["messages"][0]["role"] == "user"
    rl = load_mixture(root, "rl_train")
    assert {"prompt", "images", "path", "solution", "answer_type", "gt_centers", "depth", "intrinsics"} <= set(rl.column_names)
    assert Path(rl[0]["depth"]).is_file() and rl[0]["prompt"][0]["role"] == "user"


def test_bundled_example_config_parses():
    config = MixtureConfig.from_yaml(REPO / "training" / "configs" / "data-tiny.yaml")
    assert config.sft.total and config.qa.seed == config.seed and config.rl.path == "reference"


@pytest.mark.parametrize("change, message", [
    ({"sft": {"mix": {"lor_cott": 1.0}}}, "sft.mix.lor_cott: unknown kind"),
    ({"sft": {"mix": {"lor_cot": -1}}}, "sft.mix.lor_cot: expected a non-negative number"),
    ({"rl": {"path": "both"}}, "rl.path: expected one of"),
    ({"eval_fraction": 1.0}, "eval_fraction: expected a number in"),
    ({"qa": {"per_scen": 3}}, "qa.per_scen: unknown key"),
    ({"qa": {"per_scene": 0}}, "qa: per_scene must be >= 1"),
    ({"qa": {"per_scene": "ten"}}, "qa: per_scene must be an integer"),
    ({"sft": {"total": "many"}}, "sft.total: expected a non-negative integer"),
    ({"scenes": []}, "scenes: expected a non-empty list"),
    ({"outdir": "x"}, "config.outdir: unknown key"),
])
def test_config_errors_name_the_field(tmp_path, change, message):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(_config_dict("s.jsonl", tmp_path) | change))
    with pytest.raises(ConfigError, match=message) as error:
        MixtureConfig.from_yaml(path)
    assert str(error.value).startswith(str(path))


def test_cli_build_reports_config_errors(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(_config_dict("s.jsonl", tmp_path) | {"rl": {"path": "both"}}))
    assert main(["data", "build", "--config", str(path)]) == 2
    assert "rl.path: expected one of" in capsys.readouterr().err


def test_missing_required_field(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("scenes: [a.jsonl]\n")
    with pytest.raises(ConfigError, match="out_dir: missing"):
        MixtureConfig.from_yaml(path)


def test_missing_scenes_file_says_what_to_do(tmp_path):
    config = MixtureConfig.from_dict(_config_dict(tmp_path / "none.jsonl", tmp_path / "out"))
    with pytest.raises(ConfigError, match="none.jsonl not found .*sr-real data synth"):
        build_mixture(config, progress=False)


def test_build_is_deterministic(scenes_file, tmp_path):
    outputs = []
    for run in ("a", "b"):
        build_mixture(MixtureConfig.from_dict(_config_dict(scenes_file, tmp_path / run)), progress=False)
        outputs.append({name: (tmp_path / run / f"{name}.jsonl").read_bytes() for name in ("sft_train", "rl_train")})
    assert outputs[0] == outputs[1]
