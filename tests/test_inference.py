"""Inference engine and the `sr-real ask` / `sr-real model tiny` commands, on the tiny checkpoint."""
import json

import numpy as np
import pytest
from PIL import Image

from sr_real.cli import main
from sr_real_core.inference import SpatialReasoner, length_of_answer
from sr_real_core.query import Query, prompt_path

DTR_COMPLETION = ('<detect>Find 1 relevant object:\n<3d_box center="0.02,1.06,2.03">chair (red bbox)</3d_box>'
                  "</detect>\n<think>The chair is 2.03 m ahead.</think>\n<answer>2.03 m</answer>")


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("tiny")
    assert main(["model", "tiny", "--out", str(out), "--seed", "0"]) == 0
    return out


@pytest.fixture(scope="module")
def reasoner(tiny_dir):
    return SpatialReasoner.from_pretrained(str(tiny_dir), max_new_tokens=8)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("inputs")
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (84, 112, 3), dtype=np.uint8)).save(folder / "image.png")
    np.save(folder / "depth.npy", rng.uniform(0.5, 4.0, (84, 112)).astype(np.float32))
    (folder / "K.json").write_text(json.dumps({"fx": 100, "fy": 100, "cx": 55.5, "cy": 41.5, "width": 112,
                                               "height": 84}))
    return folder


class ScriptedBackend:
    """A backend that 'generates' a fixed completion: the engine's parsing, independent of the model."""

    def __init__(self, tokenizer, completion):
        self.ids = tokenizer(completion)["input_ids"] + [tokenizer.convert_tokens_to_ids("<|im_end|>")]
        self.batches, self.constraints = [], []

    def generate(self, inputs, max_new_tokens, constraint=None):
        self.batches.append(inputs)
        self.constraints.append(constraint)
        return [self.ids for _ in range(len(inputs["input_ids"]))]


def test_path_selection():
    assert prompt_path("reference", has_regions=True) == "dtr"
    assert prompt_path("reference", has_regions=False) == "lor"
    assert [prompt_path(p, True) for p in ("lor", "dtr", "auto")] == ["lor", "dtr", "auto"]
    with pytest.raises(ValueError, match="path must be one of"):
        prompt_path("fast", False)


def test_length_of_answer():
    assert length_of_answer("45 cm", "numeric") == pytest.approx(0.45)
    assert length_of_answer("1.2 m", None) == pytest.approx(1.2)
    assert length_of_answer("3 feet 2 inches", None) == pytest.approx(38 * 0.0254)
    for answer, kind in (("B", None), ("yes", None), ("3 o'clock", None), ("1.2 m", "choice"), (None, None)):
        assert length_of_answer(answer, kind) is None


def test_engine_parses_a_dtr_completion(reasoner):
    processor = reasoner.processor
    backend = ScriptedBackend(processor.tokenizer, DTR_COMPLETION)
    image = Image.new("RGB", (112, 84))
    result = SpatialReasoner(processor, backend).ask("How far is the chair (red bbox) <region>?", image,
                                                     regions=[{"box": [0, 0, 40, 40]}], answer_type="numeric")
    assert (result.requested_path, result.path, result.well_formed, result.errors) == ("dtr", "dtr", True, [])
    assert result.answer == "2.03 m" and result.value == pytest.approx(2.03) and result.value_m == pytest.approx(2.03)
    assert [(d.name, d.ref, d.center_3d) for d in result.detections] == [("chair", "red bbox", (0.02, 1.06, 2.03))]
    assert result.reasoning == "The chair is 2.03 m ahead."
    assert result.latency_s >= 0 and set(result.timings) == {"preprocess_s", "generate_s", "parse_s"}
    inputs = backend.batches[0]
    assert inputs["region_weights"].shape[0] == 1 and "image_points" not in inputs
    # A known answer type is decoded in its form; without one, or switched off, decoding is free.
    constraint = backend.constraints[0]
    assert constraint.patterns[0].fullmatch("1.5 m</answer>") and not constraint.patterns[0].fullmatch("B</answer>")
    SpatialReasoner(processor, backend).ask("How far is it?", image)
    SpatialReasoner(processor, backend, constrain_answer=False).ask("How far?", image, answer_type="numeric")
    assert backend.constraints[1:] == [None, None]


def test_engine_batches_queries_with_the_torch_backend(reasoner):
    rng = np.random.default_rng(1)
    images = [rng.integers(0, 255, (84, 112, 3), dtype=np.uint8), rng.integers(0, 255, (56, 56, 3), dtype=np.uint8)]
    queries = [Query("Is the cup (red bbox) <region> left of the box (blue bbox) <region>?", [images[0]],
                     depths=[rng.uniform(1, 3, (84, 112))],
                     regions=[{"box": [0, 0, 30, 30]}, {"box": [60, 40, 112, 84]}]),
               Query("How tall is the lamp?", [images[1]], path="lor")]
    batched = reasoner.ask_batch(queries)
    assert [a.requested_path for a in batched] == ["dtr", "lor"]
    single = [reasoner.ask_batch([q])[0] for q in queries]
    assert [a.completion for a in batched] == [a.completion for a in single]
    with pytest.raises(ValueError, match="the question has 0 <region> tokens but 1 regions"):
        reasoner.ask("How tall is the lamp?", images[0], regions=[{"box": [0, 0, 10, 10]}])


def test_ask_prints_json_even_for_gibberish(tiny_dir, files, capsys):
    code = main(["ask", "--model", str(tiny_dir), "--image", str(files / "image.png"), "--depth",
                 str(files / "depth.npy"), "--intrinsics", str(files / "K.json"), "--region", "0,0,40,40",
                 "--region", "50,30,112,84", "--max-new-tokens", "12",
                 "Is the chair (red bbox) <region> closer than the table (blue bbox) <region>?"])
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert {"path", "answer", "value_m", "detections", "reasoning", "completion", "latency_s"} <= set(result)
    assert result["requested_path"] == "dtr" and result["latency_s"] > 0
    assert result["well_formed"] or result["errors"]  # an untrained model: whatever it says is reported


def test_ask_reports_bad_input_without_a_traceback(tiny_dir, files, capsys):
    args = ["ask", "--model", str(tiny_dir), "--image", str(files / "image.png")]
    assert main(args + ["--region", "0,0,500,40", "How tall is <region>?"]) == 2
    assert "not a box inside the 112x84 image" in capsys.readouterr().err
    assert main(["ask", "--model", str(files), "--image", str(files / "image.png"), "Where?"]) == 2
    assert "is missing" in capsys.readouterr().err


def test_regions_are_marked_on_the_images_as_in_training():
    from sr_real_core.marks import MARK_COLOURS
    from sr_real_core.inference import marked_images

    images = [np.zeros((40, 60, 3), np.uint8), np.zeros((40, 60, 3), np.uint8)]
    mask = np.zeros((40, 60), bool)
    mask[20:30, 40:50] = True
    regions = [{"image_index": 0, "box": [5, 5, 25, 25]}, {"image_index": 0, "mask": mask}]
    first, second = marked_images(images, regions)
    assert tuple(first[5, 10]) == MARK_COLOURS["red"]  # top edge of the first box
    assert tuple(first[20, 45]) == MARK_COLOURS["blue"]  # top edge of the mask's bounding box
    assert not first[15, 15].any() and second is images[1]  # inside stays untouched; no regions, no copy
    with pytest.raises(ValueError, match="at most 4 regions"):
        marked_images(images, [{"box": [0, 0, 2, 2]}] * 5)
