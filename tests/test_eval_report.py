"""End to end: `sr-real eval` writes metrics.json, the Markdown report with its plots, the HTML gallery;
`sr-real eval compare` puts runs side by side; `sr-real eval import` from the command line."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path

import pytest
from PIL import Image

from sr_real.cli import main
from sr_real_core.evaluation.compare import compare_table
from sr_real_core.evaluation.gallery import select_examples
from sr_real_core.evaluation.scoring import Verdict

FIXTURES = Path(__file__).parent / "fixtures" / "eval"
INTRINSICS = {"fx": 100.0, "fy": 100.0, "cx": 40.0, "cy": 30.0, "width": 80, "height": 60}
DTR = ('<detect>Find 2 relevant objects:\n<3d_box center="0.00,0.00,2.00">cup (red bbox)</3d_box>\n'
       '<3d_box center="0.60,0.00,2.00">mug (blue bbox)</3d_box></detect>\n<think>The cup is 2 m away.</think>\n'
       "<answer>{answer}</answer>")


def write_lines(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


@pytest.fixture()
def qa_file(tmp_path) -> Path:
    Image.new("RGB", (80, 60), (128, 128, 128)).save(tmp_path / "scene.png")
    regions = [{"ref": "red bbox", "object_index": 0, "bbox_2d": [30, 20, 50, 40]},
               {"ref": "blue bbox", "object_index": 1, "bbox_2d": [55, 20, 70, 40]}]
    # the blue centre projects to u = 40 + 100 * 0.5 / 2 = 65; the DTR answer puts it at 0.6 m: 0.1 m off
    centers = [{"ref": "red bbox", "center": [0.0, 0.0, 2.0]}, {"ref": "blue bbox", "center": [0.5, 0.0, 2.0]}]
    common = {"image": "scene.png", "intrinsics": INTRINSICS, "regions": regions, "gt_centers": centers,
              "objects": [0, 1], "object_names": ["cup", "mug"]}
    rows = [
        {"id": "d1", "question": "How far apart are the red bbox <region> and the blue bbox <region>?",
         "answer_type": "numeric", "solution": 0.5, "category": "distance", **common},
        {"id": "d2", "question": "How far is the cup?", "answer_type": "numeric", "solution": 2.0,
         "category": "distance", "image": "scene.png", "gt_centers": centers},  # no intrinsics to project them
        {"id": "p1", "question": "Is the red bbox <region> to the left of the blue bbox <region>?",
         "answer_type": "yesno", "solution": "yes", "category": "left_predicate", **common},
        {"id": "p2", "question": "Is the cup to the left of the mug?", "answer_type": "yesno", "solution": "yes",
         "category": "left_predicate", "image": "absent.png"},
    ]
    return write_lines(tmp_path / "qa.jsonl", rows)


@pytest.fixture()
def predictions_file(tmp_path) -> Path:
    return write_lines(tmp_path / "pred.jsonl", [
        {"id": "d1", "completion": DTR.format(answer="60 cm")},  # 0.6 vs 0.5: inside the 0.75-1.25 band
        {"id": "d2", "completion": "I cannot tell."},  # unparsed
        {"id": "p1", "completion": "<think>...</think><answer>Yes, the cup is to the left of the mug.</answer>"},
        # p2 missing
    ])


def run_eval(tmp_path, qa_file, predictions_file, *extra) -> tuple[int, Path]:
    out = tmp_path / "run"
    code = main(["eval", "--qa", str(qa_file), "--predictions", str(predictions_file), "--out", str(out), *extra])
    return code, out


def test_metrics_report_and_plots(tmp_path, qa_file, predictions_file, capsys):
    code, out = run_eval(tmp_path, qa_file, predictions_file)
    assert code == 0
    assert "1 missing predictions" in capsys.readouterr().err
    metrics = json.loads((out / "metrics.json").read_text())
    assert (metrics["n"], metrics["n_unparsed"], metrics["missing_predictions"]) == (4, 2, ["p2"])
    assert metrics["quantitative_success"] == 0.5 and metrics["qualitative_accuracy"] == 0.5
    assert metrics["center_error_median_m"] == pytest.approx(0.05)  # errors 0.0 and 0.1 m
    report = (out / "report.md").read_text()
    for expected in ("## Overall", "| Quantitative success (0.75–1.25 × truth) | 50.0% |",
                     "| DTR centre error, median | 0.050 m |", "## Per category",
                     "| distance | 2 | quantitative success | 50.0% |",
                     "| left_predicate | 2 | qualitative accuracy | 50.0% |", "## Paths taken", "| dtr | 25.0% | 1 |",
                     "## Unparsed answers (2)", "| `d2` | distance | answer not understood: no length | I cannot tell. |",
                     "| `p2` | left_predicate | missing prediction | – |", "## Missing predictions (1)",
                     "[gallery.html](gallery.html)"):
        assert expected in report
    for name in ("accuracy_per_category.png", "error_histograms.png", "path_shares.png"):
        assert f"(plots/{name})" in report
        with Image.open(out / "plots" / name) as plot:
            assert plot.format == "PNG" and plot.width > 300
    verdicts = [json.loads(line) for line in (out / "verdicts.jsonl").read_text().splitlines()]
    assert [(v["id"], v["correct"], v["pred"]) for v in verdicts] == [
        ("d1", True, pytest.approx(0.6)), ("d2", False, None), ("p1", True, "yes"), ("p2", False, None)]


class _Images(HTMLParser):
    def __init__(self):
        super().__init__()
        self.sources: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.sources.append(dict(attrs)["src"])


def test_gallery_draws_regions_and_projected_centres(tmp_path, qa_file, predictions_file):
    _, out = run_eval(tmp_path, qa_file, predictions_file, "--gallery-size", "10")
    page = (out / "gallery.html").read_text()
    images = _Images()
    images.feed(page)
    assert len(images.sources) == 3  # p2's image is absent
    assert all((out / source).is_file() for source in images.sources)
    assert "image not found" in page and page.count('class="card ') == 4
    assert "no intrinsics: 3D centres not projected" in page  # d2
    assert "0.00 m, 0.10 m" in page and "The cup is 2 m away." in page  # centre errors, reasoning
    d1 = out / images.sources[page[: page.index("<code>d1</code>")].count("<img") - 1]
    with Image.open(d1) as drawn:
        scale = drawn.width / 80  # drawn at 480 px wide
        red = drawn.convert("RGB").getpixel((round(30 * scale) + 1, round(30 * scale)))  # left edge of the red box
        ring = drawn.convert("RGB").getpixel((round(40 * scale) + 6, round(30 * scale)))  # true centre ring, r = 6
    assert red[0] > 150 > red[1] and ring[0] > 150 > ring[1]


def test_gallery_selection_shows_every_category_wrong_first():
    def verdict(identifier, category, correct):
        return Verdict(identifier, category, "yesno", "q", "yes", "a", "yes" if correct else "no", correct,
                       missing=False, path=None, well_formed=False)

    verdicts = [verdict("a1", "a", True), verdict("a2", "a", False), verdict("b1", "b", True), verdict("a3", "a", True)]
    assert [v.id for v in select_examples(verdicts, 3)] == ["a2", "b1", "a1"]
    assert select_examples(verdicts, 0) == []


def test_compare_table_side_by_side(tmp_path, qa_file, predictions_file):
    _, first = run_eval(tmp_path, qa_file, predictions_file)
    better = write_lines(tmp_path / "better.jsonl", [
        {"id": "d1", "completion": "0.5 m"}, {"id": "d2", "completion": "2 m"}, {"id": "p1", "completion": "yes"},
        {"id": "p2", "completion": "yes"}])
    second = tmp_path / "second"
    assert main(["eval", "--qa", str(qa_file), "--predictions", str(better), "--out", str(second),
                 "--gallery-size", "0"]) == 0
    assert not (second / "gallery.html").exists()
    table_path = tmp_path / "table.md"
    assert main(["eval", "compare", str(first), str(second / "metrics.json"), "--label", "SFT", "--label", "RL",
                 "--out", str(table_path)]) == 0
    table = table_path.read_text()
    assert table.startswith("| Figure | SFT | RL |")
    assert "| Quantitative success (0.75–1.25 × truth) | 50.0% | **100.0%** |" in table
    assert "| Unparsed answers | 2 | **0** |" in table
    assert "| Questions | 4 | 4 |" in table  # counts are not ranked
    assert "| Category: left_predicate | 50.0% | **100.0%** |" in table
    assert "| Path share: none | 50.0% | 100.0% |" in table


def test_compare_ties_are_all_bold_and_equal_rows_plain():
    runs = [{"n": 2, "accuracy": 0.5, "abs_rel": 0.2}, {"n": 2, "accuracy": 0.5, "abs_rel": 0.1},
            {"n": 2, "accuracy": 0.25, "abs_rel": 0.1}]
    table = compare_table(runs, ["a", "b", "c"])
    assert "| Accuracy, all questions | **50.0%** | **50.0%** | 25.0% |" in table
    assert "| Mean abs-rel error | 0.200 | **0.100** | **0.100** |" in table


def test_cli_errors_and_strict_mode(tmp_path, qa_file, predictions_file, capsys):
    code, _ = run_eval(tmp_path, qa_file, predictions_file, "--strict")
    assert code == 1  # p2 has no prediction
    with pytest.raises(SystemExit) as exit_info:
        run_eval(tmp_path, qa_file, predictions_file, "--path", "dtr")
    assert exit_info.value.code == 2 and "--path selects the prompt of a --model run" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["eval", "--qa", str(qa_file)])
    duplicated = write_lines(tmp_path / "dup.jsonl", [{"id": "d1", "completion": "1 m"},
                                                      {"id": "d1", "completion": "2 m"}])
    assert main(["eval", "--qa", str(qa_file), "--predictions", str(duplicated), "--out", str(tmp_path / "x")]) == 2
    assert "1 duplicated id(s): 'd1' on lines 1, 2" in capsys.readouterr().err


def test_cli_import(tmp_path, capsys):
    out = tmp_path / "cv.jsonl"
    assert main(["eval", "import", "cvbench", str(FIXTURES / "cvbench" / "test_3d.jsonl"), "--out", str(out)]) == 0
    assert "wrote 2 QA records" in capsys.readouterr().out
    assert main(["eval", "import", "spatialrgpt", str(FIXTURES / "spatialrgpt" / "bench.jsonl"), "--out", str(out),
                 "--strict"]) == 1
    assert "skipped rgpt-7: cannot read a numeric solution" in capsys.readouterr().err
