"""Importers on small samples written in each benchmark's format (tests/fixtures/eval, see make_fixtures.py):
converted records, kept images, skipped rows named, and the round trip import -> QA file -> scoring."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sr_real_core.evaluation import BENCHMARKS
import numpy as np
from PIL import Image

from sr_real.cli import main
from sr_real_core.evaluation.importers import _CONVERTERS, import_benchmark, rle_bbox, rle_mask
from sr_real_core.evaluation.records import EvaluationInputError, Prediction, load_qa
from sr_real_core.evaluation.scoring import build_metrics, score_all

FIXTURES = Path(__file__).parent / "fixtures" / "eval"


def by_id(result) -> dict:
    return {record["id"]: record for record in result.records}


def benchmark_answers_score_perfectly(qa_path: Path) -> dict:
    """Feed every record's own benchmark answer back as the prediction: a faithful import scores 100%."""
    records = load_qa(qa_path)
    predictions = {r.id: Prediction(r.id, r.raw["answer"], {}) for r in records}
    metrics = build_metrics(score_all(records, predictions))
    assert metrics["n_unparsed"] == 0 and metrics["accuracy"] == 1.0
    return metrics


def test_importers_cover_every_benchmark_name():
    assert tuple(_CONVERTERS) == BENCHMARKS


def test_spatialrgpt_bench(tmp_path):
    out = tmp_path / "qa" / "spatialrgpt.jsonl"
    result = import_benchmark("spatialrgpt", FIXTURES / "spatialrgpt" / "bench.jsonl", out)
    records = by_id(result)
    assert sorted(records) == [f"rgpt-{i}" for i in range(7)]
    assert result.skipped == ["rgpt-7: cannot read a numeric solution from the answer 'It is quite wide.'"]
    expected = {"rgpt-0": ("yesno", "yes", "left_predicate"), "rgpt-1": ("yesno", "no", "behind_predicate"),
                "rgpt-2": ("choice", "B", "above_choice"), "rgpt-3": ("choice", "A", "tall_choice"),
                "rgpt-4": ("numeric", pytest.approx(11.4), "distance"),
                "rgpt-5": ("numeric", pytest.approx(38 * 0.0254), "height"), "rgpt-6": ("direction", 2, "direction")}
    for identifier, (answer_type, solution, category) in expected.items():
        record = records[identifier]
        assert (record["answer_type"], record["solution"], record["category"]) == (answer_type, solution, category)
    assert records["rgpt-2"]["options"] == ["Region [0]", "Region [1]"]
    assert records["rgpt-1"]["regions"][1] == {"ref": "Region [1]", "bbox_2d": [36.0, 6.0, 58.0, 30.0]}  # from a string
    assert records["rgpt-5"]["regions"][0]["bbox_2d"] == [50.0, 0.0, 100.0, 50.0]  # from the compressed RLE
    assert records["rgpt-4"]["source"]["category"] == "distance_data"
    assert result.images_missing == 0
    for record in load_qa(out):  # images stay where they are, referenced relative to the QA file
        assert record.resolve("image").is_file()
    metrics = benchmark_answers_score_perfectly(out)
    assert metrics["qualitative_accuracy"] == metrics["quantitative_success"] == metrics["direction_success"] == 1.0


def test_qspatial_parquet_with_embedded_and_external_images(tmp_path):
    out = tmp_path / "qspatial.jsonl"
    result = import_benchmark("qspatial", FIXTURES / "qspatial", out,
                              image_root=FIXTURES / "qspatial" / "scannet_images")
    records = by_id(result)
    assert sorted(records) == ["QSpatial_plus_0000", "QSpatial_plus_0001", "QSpatial_plus_0002",
                               "QSpatial_scannet_0000"]
    assert result.skipped == ["QSpatial_scannet_0001: answer_value 3.0 answer_unit 'furlongs' is not a positive "
                              "length in a known unit"]
    solutions = {identifier: record["solution"] for identifier, record in records.items()}
    assert solutions == {"QSpatial_plus_0000": pytest.approx(1.5), "QSpatial_plus_0001": pytest.approx(5 * 0.3048),
                         "QSpatial_plus_0002": pytest.approx(0.8), "QSpatial_scannet_0000": pytest.approx(80 * 0.0254)}
    assert records["QSpatial_plus_0000"]["image"] == "qspatial_images/QSpatial_plus_0000.png"  # bytes written out
    assert records["QSpatial_scannet_0000"]["category"] == "1d_horizontal"
    for record in load_qa(out):
        assert record.resolve("image").is_file()
    benchmark_answers_score_perfectly(out)


def test_cvbench_current_release_folder_reads_the_parquet_files_with_their_images(tmp_path):
    out = tmp_path / "cvbench.jsonl"
    result = import_benchmark("cvbench", FIXTURES / "cvbench", out)  # test_{2d,3d}.{jsonl,parquet}
    records = by_id(result)
    assert sorted(records) == ["1", "2"] and result.filtered == 1 and result.skipped == []  # jsonl rows not repeated
    assert records["1"]["image"] == "cvbench_images/1.png" and result.images_missing == 0
    depth = records["1"]
    assert (depth["answer_type"], depth["solution"], depth["options"], depth["category"]) == (
        "choice", "B", ["sink", "bottle"], "depth_choice")
    assert depth["question"].endswith("(A) sink\n(B) bottle")  # the prompt with its lettered choices
    assert records["2"]["category"] == "distance_choice"
    assert records["2"]["source"]["bbox"][2] == [40, 2, 58, 12]
    benchmark_answers_score_perfectly(out)
    records = load_qa(out)
    free_text = {"1": Prediction("1", "The bottle is closer to the camera than the sink.", {}),
                 "2": Prediction("2", "The shelves.", {})}
    assert build_metrics(score_all(records, free_text))["qualitative_accuracy"] == 1.0


def test_cvbench_jsonl_uses_the_img_folder(tmp_path):
    result = import_benchmark("cvbench", FIXTURES / "cvbench" / "test_3d.jsonl", tmp_path / "qa.jsonl")
    assert sorted(by_id(result)) == ["1", "2"] and result.images_missing == 0
    assert all(record.resolve("image").is_file() for record in load_qa(tmp_path / "qa.jsonl"))


def test_a_missing_image_warns_and_fails_under_strict(tmp_path, capsys):
    source = tmp_path / "test_3d.jsonl"  # the jsonl without the img/ folder beside it
    source.write_text((FIXTURES / "cvbench" / "test_3d.jsonl").read_text())
    result = import_benchmark("cvbench", source, tmp_path / "qa.jsonl")
    assert result.images_missing == 2
    with pytest.raises(EvaluationInputError, match=r"2 image\(s\) are not on disk, e\.g\. .*omni3d_sunrgbd_1\.png"):
        import_benchmark("cvbench", source, tmp_path / "strict.jsonl", strict=True)
    assert not (tmp_path / "strict.jsonl").exists()
    assert main(["eval", "import", "cvbench", str(source), "--out", str(tmp_path / "warned.jsonl")]) == 0
    assert "warning: 2 image(s) are not on disk" in capsys.readouterr().err
    assert main(["eval", "import", "cvbench", str(source), "--out", str(tmp_path / "cli.jsonl"), "--strict"]) == 2
    error = capsys.readouterr().err
    assert error.startswith("sr-real eval: error: 2 image(s) are not on disk") and error.count("\n") == 1


def test_a_csv_source_gets_a_clear_message(tmp_path, capsys):
    (tmp_path / "val.csv").write_text("idx,type,task\n0,3D,Depth\n")
    with pytest.raises(EvaluationInputError, match="CSV is not read .* test_3d.parquet"):
        import_benchmark("cvbench", tmp_path / "val.csv", tmp_path / "qa.jsonl")
    with pytest.raises(EvaluationInputError, match="CSV is not read"):
        import_benchmark("cvbench", tmp_path, tmp_path / "qa.jsonl")
    assert main(["eval", "import", "cvbench", str(tmp_path / "val.csv"), "--out", str(tmp_path / "qa.jsonl")]) == 2
    assert "CSV is not read" in capsys.readouterr().err


def test_spatialrgpt_hugging_face_parquet_writes_images_and_masks(tmp_path):
    out = tmp_path / "rgpt.jsonl"
    result = import_benchmark("spatialrgpt", FIXTURES / "spatialrgpt" / "hf", out, strict=True)
    records = by_id(result)  # the folder's Parquet only: SpatialRGPT-Bench_v1.json repeats the rows
    assert sorted(records) == ["hf-0", "hf-1", "hf-2"] and result.skipped == [] and result.images_missing == 0
    assert records["hf-0"]["image"] == "rgpt_images/hf-0.jpg"
    assert (records["hf-0"]["solution"], records["hf-1"]["solution"]) == ("yes", pytest.approx(1.2))
    assert records["hf-2"]["solution"] == pytest.approx(30.5 * 0.0254)
    assert records["hf-0"]["scene_id"] == "sunrgbd/hf-0.jpg"
    region = records["hf-0"]["regions"][1]
    assert region["bbox_2d"] == [0.0, 48.0, 42.0, 100.0]  # the release's box, looser than the mask
    assert region["mask"] == "rgpt_masks/hf-0_1.png"
    mask = np.asarray(Image.open(tmp_path / region["mask"])) > 0
    expected = np.zeros((100, 100), bool)
    expected[50:, :40] = True
    assert np.array_equal(mask, expected) and np.array_equal(mask, rle_mask(region["rle"]))
    for record in load_qa(out):
        assert record.resolve("image").is_file()
    benchmark_answers_score_perfectly(out)


def test_qspatial_float32_values_do_not_leak_into_the_answer(tmp_path):
    result = import_benchmark("qspatial", FIXTURES / "qspatial" / "data" / "QSpatial_plus-00000-of-00001.parquet",
                              tmp_path / "qa.jsonl")
    record = by_id(result)["QSpatial_plus_0002"]
    assert record["answer"] == "0.8 meters" and record["source"]["answer_value"] == 0.8
    assert record["solution"] == 0.8


def test_limit_and_unknown_sources(tmp_path):
    result = import_benchmark("spatialrgpt", FIXTURES / "spatialrgpt" / "bench.jsonl", tmp_path / "a.jsonl", limit=2)
    assert [record["id"] for record in result.records] == ["rgpt-0", "rgpt-1"]
    assert len((tmp_path / "a.jsonl").read_text().splitlines()) == 2
    with pytest.raises(ValueError, match="unknown benchmark"):
        import_benchmark("vsibench", FIXTURES, tmp_path / "b.jsonl")
    with pytest.raises(ValueError, match="no such file"):
        import_benchmark("qspatial", tmp_path / "absent", tmp_path / "c.jsonl")


def test_json_list_input(tmp_path):
    rows = [json.loads(line) for line in (FIXTURES / "spatialrgpt" / "bench.jsonl").read_text().splitlines()]
    source = tmp_path / "SpatialRGPT-Bench_v1.json"
    source.write_text(json.dumps(rows[:3]))
    result = import_benchmark("spatialrgpt", source, tmp_path / "out.jsonl",
                              image_root=FIXTURES / "spatialrgpt")
    assert len(result.records) == 3 and result.images_missing == 0


def test_rle_bbox_on_a_pycocotools_string_and_on_plain_counts():
    # pycocotools' string for a 100x100 mask with mask[:50, 50:] set (columns 50..99, rows 0..49)
    compressed = {"size": [100, 100], "counts": "Xl4b1b1" + "0" * 98}
    assert rle_bbox(compressed) == [50.0, 0.0, 100.0, 50.0]
    # plain counts, column-major: a 4x3 (h x w) mask with pixels (row 1..2, column 1) set
    assert rle_bbox({"size": [4, 3], "counts": [5, 2, 5]}) == [1.0, 1.0, 2.0, 3.0]
    assert [index.tolist() for index in rle_mask({"size": [4, 3], "counts": [5, 2, 5]}).nonzero()] == [[1, 2], [1, 1]]
    assert rle_mask(compressed)[:50, 50:].all() and rle_mask(compressed).sum() == 2500
    # a run crossing a column boundary covers full columns' rows: rows 3 of column 0 and 0 of column 1
    assert rle_bbox({"size": [4, 3], "counts": [3, 2, 7]}) == [0.0, 0.0, 2.0, 4.0]
    assert rle_bbox({"size": [4, 3], "counts": [12]}) is None  # empty mask
