"""The quickstart's report and the ablation table render from results of the documented shape."""
import json

from sr_real.training.ablations import VARIANTS
from sr_real.training.evaluate import PathMetrics
from sr_real.training.report import ablation_markdown, answer_bias, refresh_report, target_checks, write_report


def path_metrics(quality: float, dtr_share: float, centre: float | None) -> dict:
    return PathMetrics(qualitative_accuracy=quality, quantitative_success=quality / 2, abs_rel=0.4,
                       center_error_median_m=centre, mean_reward=quality, path_share_dtr=dtr_share,
                       accuracy=quality, direction_success=None, format_failure_rate=0.1,
                       qualitative_unparsed=0.2, n=10).to_dict()


def stage(quality: float) -> dict:
    return {"lor": path_metrics(quality, 0.0, None), "dtr": path_metrics(quality + 0.1, 1.0, 0.3),
            "auto": path_metrics(quality + 0.1, 0.6, 0.3)}


METRICS = {"sft": stage(0.3), "rl": stage(0.5), "minutes": 12.5}


def test_targets_are_checked_against_the_issue():
    checks = {name: met for name, _, met in target_checks(METRICS)}
    assert checks["DTR median centre error < 0.35 m"]
    assert checks["RL raises the mean reward over SFT (per path lor/dtr/auto)"]
    assert not checks["qualitative accuracy > 75% (auto mode)"]


def test_the_report_renders_every_section_with_plots(tmp_path):
    out = tmp_path / "quickstart"
    (out / "sft").mkdir(parents=True)
    (out / "rl").mkdir()
    sft_log = [{"step": s, "loss": 3.0 / s, "mean_token_accuracy": 0.1 * s} for s in range(1, 5)]
    (out / "sft" / "log.jsonl").write_text("".join(json.dumps(entry) + "\n" for entry in sft_log))
    (out / "rl" / "log.jsonl").write_text("".join(json.dumps({"step": s, "reward": 0.1 * s, "reward/format": 0.5,
                                                              "path/dtr": 0.5, "filter/kept_groups": 1.0}) + "\n"
                                                  for s in range(1, 4)))
    image = tmp_path / "marked.png"
    image.write_bytes(b"")
    row = {"question": "How far is the red bbox <region>?", "truth": "1 m", "answer": "90 cm", "path": "dtr",
           "reward": 0.7, "image": str(image)}
    facts = {"stage_minutes": {"sft": 8.0, "rl": 3.0}, "load_average": [1.5, 2.0], "max_steps": None,
             "heldout_questions": 10,
             "manifest": {"counts": {"sft_train": 4}, "per_kind": {"sft_train": {"lor_cot": 4}},
                          "scenes": {"train": ["a"], "eval": ["b"]}}}
    showcase = {"answers": {"tabletop": [row]}, "real_frame_note": "no real frame configured"}
    for name, value in (("metrics.json", METRICS), ("facts.json", facts)):
        (out / name).write_text(json.dumps(value))
    (out / "showcase").mkdir()
    (out / "showcase" / "answers.json").write_text(json.dumps(showcase))

    text = write_report(out, METRICS, facts, showcase).read_text()
    for heading in ("## Results on held-out scenes", "## Targets", "## Training", "## Questions on whole scenes",
                    "## Ablations"):
        assert heading in text
    assert "&lt;region>" in text and "[marks](../marked.png)" in text  # tokens escaped, images linked
    assert {p.name for p in (out / "plots").iterdir()} == {"sft_loss.png", "rl_reward.png", "rl_paths.png",
                                                            "metrics.png"}

    results = {"baseline": {"sft": METRICS["sft"], "rl": METRICS["rl"]}, "minutes": 40.0, "variants": {
        name: {"ablation": v["ablation"], "sft": {p: stage(0.2)[p] for p in v["paths"]},
               "rl": {p: stage(0.4)[p] for p in v["paths"]}} for name, v in VARIANTS.items()}}
    (tmp_path / "ablations").mkdir()
    (tmp_path / "ablations" / "results.json").write_text(json.dumps(results))
    table = ablation_markdown(results)
    assert all(name in table for name in VARIANTS) and "40.0 min" in table
    assert "| no_detection | dtr | RL |" in table
    assert table.splitlines()[-1] in refresh_report(out).read_text()  # the refreshed report carries the table


def test_answer_bias_names_the_dominant_answer_and_its_base_rate(tmp_path):
    verdicts = [{"answer_type": "yesno", "pred": "no", "solution": truth} for truth in ("yes", "no", "no", "yes")]
    verdicts += [{"answer_type": "yesno", "pred": "yes", "solution": "yes"},
                 {"answer_type": "choice", "pred": None, "solution": "A"},
                 {"answer_type": "choice", "pred": "B", "solution": "A"},
                 {"answer_type": "numeric", "pred": 1.0, "solution": 1.0}]
    path = tmp_path / "verdicts.jsonl"
    path.write_text("".join(json.dumps(v) + "\n" for v in verdicts))
    assert answer_bias(path) == {"yesno": ("no", 0.8, 0.4), "choice": ("B", 1.0, 0.0)}
    assert answer_bias(tmp_path / "absent.jsonl") == {}
