"""`sr-real eval --model`: QA records through the inference engine (a tiny random checkpoint: its gibberish
must score as unparsed and wrong, never crash), and the region prompts the engine is given."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from sr_real.cli import main
from sr_real_core.evaluation.importers import import_benchmark
from sr_real_core.evaluation.records import EvaluationInputError, QARecord, load_qa
from sr_real_core.evaluation.run_model import region_prompt

RED = {"ref": "red bbox", "bbox_2d": [1, 2, 10, 12]}
BLUE = {"ref": "blue bbox", "bbox_2d": [20, 2, 30, 12]}


def record(question: str, regions: list[dict]) -> QARecord:
    return QARecord("r", question, "yesno", "yes", None, {"question": question, "regions": regions}, Path("."))


@pytest.mark.parametrize(
    ("question", "regions", "prompt", "boxes"),
    [
        ("Is the red bbox <region> left of the blue bbox <region>?", [RED, BLUE],
         "Is the red bbox <region> left of the blue bbox <region>?", [RED, BLUE]),
        ("Is Region [1] left of Region [0]?", [{"ref": "Region [0]", "bbox_2d": [0, 0, 4, 4]},
                                               {"ref": "Region [1]", "bbox_2d": [5, 0, 9, 4]}],
         "Is Region [1] <region> left of Region [0] <region>?", [[5, 0, 9, 4], [0, 0, 4, 4]]),
        ("Is the chair (blue bbox) taller than the desk (red bbox)?", [RED, BLUE],
         "Is the chair (blue bbox) <region> taller than the desk (red bbox) <region>?", [BLUE, RED]),
        ("How far is the cup?", [], "How far is the cup?", []),
    ],
)
def test_region_prompt_inserts_one_token_per_mention_in_order(question, regions, prompt, boxes):
    text, engine_regions = region_prompt(record(question, regions))
    expected = [box["bbox_2d"] if isinstance(box, dict) else box for box in boxes]
    assert text == prompt
    assert [region["box"] for region in engine_regions] == [[float(v) for v in box] for box in expected]


def test_region_prompt_refuses_a_token_count_mismatch():
    with pytest.raises(EvaluationInputError, match="2 <region> tokens but 1 regions"):
        region_prompt(record("Is the red bbox <region> left of the blue bbox <region>?", [RED]))


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("tiny")
    assert main(["model", "tiny", "--out", str(path)]) == 0
    return path


def test_eval_with_an_untrained_model(tmp_path, tiny_model):
    Image.new("RGB", (64, 48), (120, 130, 140)).save(tmp_path / "scene.png")
    intrinsics = {"fx": 60.0, "fy": 60.0, "cx": 32.0, "cy": 24.0, "width": 64, "height": 48}
    rows = [
        {"id": "a", "image": "scene.png", "question": "Is the red bbox <region> left of the blue bbox <region>?",
         "answer_type": "yesno", "solution": "yes", "category": "left_predicate", "regions": [RED, BLUE],
         "gt_centers": [{"ref": "red bbox", "center": [0, 0, 2]}], "intrinsics": intrinsics},
        {"id": "b", "image": "scene.png", "question": "How far is the cup?", "answer_type": "numeric",
         "solution": 1.5, "category": "distance"},
        {"id": "c", "image": "scene.png", "question": "Where is Region [1] from Region [0]?",
         "answer_type": "direction", "solution": 3, "category": "direction",
         "regions": [{"ref": "Region [0]", "bbox_2d": [0, 0, 8, 8]},
                     {"ref": "Region [1]", "bbox_2d": [30, 20, 40, 30]}]},
    ]
    qa = tmp_path / "qa.jsonl"
    qa.write_text("".join(json.dumps(row) + "\n" for row in rows))
    out = tmp_path / "run"
    assert main(["eval", "--qa", str(qa), "--model", str(tiny_model), "--out", str(out), "--path", "auto",
                 "--max-new-tokens", "8", "--batch-size", "2"]) == 0
    predictions = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert [p["id"] for p in predictions] == ["a", "b", "c"]
    assert all(p["requested_path"] == "auto" and p["latency_s"] > 0 for p in predictions)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n"] == 3 and metrics["inputs"]["path_mode"] == "auto" and metrics["mean_latency_s"] > 0
    assert metrics["accuracy"] <= 1.0 and len(metrics["unparsed"]) == metrics["n_unparsed"]
    assert (out / "report.md").is_file() and (out / "gallery.html").is_file()


def test_spatialrgpt_import_with_embedded_images_and_masks_runs_with_the_model(tmp_path, tiny_model, capsys):
    qa = tmp_path / "rgpt.jsonl"
    import_benchmark("spatialrgpt", Path(__file__).parent / "fixtures" / "eval" / "spatialrgpt" / "hf", qa, strict=True)
    records = load_qa(qa)
    question, regions = region_prompt(records[0])
    assert question == "Is Region [0] <region> above Region [1] <region>?"
    assert [sorted(region) for region in regions] == [["image_index", "mask"]] * 2  # the masks, not the boxes
    assert regions[1]["mask"][50:, :40].all() and regions[1]["mask"].sum() == 2000
    out = tmp_path / "run"
    assert main(["eval", "--qa", str(qa), "--model", str(tiny_model), "--out", str(out), "--max-new-tokens", "4"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n"] == 3 and set(metrics["per_benchmark"]) == {"spatialrgpt"}
    (tmp_path / "rgpt_masks" / "hf-0_1.png").unlink()
    capsys.readouterr()
    assert main(["eval", "--qa", str(qa), "--model", str(tiny_model), "--out", str(tmp_path / "again")]) == 2
    assert "1 record(s) lack their image, depth or mask file: 'hf-0'" in capsys.readouterr().err
