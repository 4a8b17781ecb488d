"""Importers on small samples written in each benchmark's format (tests/fixtures/eval, see make_fixtures.py):
converted records, kept images, skipped rows named, and the round trip import -> QA file -> scoring."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sr_real_core.evaluation import BENCHMARKS
from sr_real_core.evaluation.importers import _CONVERTERS, import_benchmark, rle_bbox
from sr_real_core.evaluation.records import Prediction, load_qa
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


def test_cvbench_keeps_3d_rows_as_choice_questions(tmp_path):
    out = tmp_path / "cvbench.jsonl"
    result = import_benchmark("cvbench", FIXTURES / "cvbench" / "test.jsonl", out)
    records = by_id(result)
    assert sorted(records) == ["1", "2"] and result.filtered == 1 and result.skipped == []
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
    # a run crossing a column boundary covers full columns' rows: rows 3 of column 0 and 0 of column 1
    assert rle_bbox({"size": [4, 3], "counts": [3, 2, 7]}) == [0.0, 0.0, 2.0, 4.0]
    assert rle_bbox({"size": [4, 3], "counts": [12]}) is None  # empty mask
