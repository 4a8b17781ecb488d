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
    assert not checks["DTR median centre error <= 0.15 m"]  # 0.3 m
    assert checks["RL accuracy > SFT accuracy (lor / dtr / auto)"]  # +20 points on each path
    assert not checks["qualitative accuracy >= 80% (auto)"]  # 60%
    assert checks["auto accuracy >= the better fixed path - 2 points"]  # auto = DTR
    assert not checks["DTR centre error below the constant median centre by its interval"]  # no interval given


def test_the_report_renders_every_section_with_plots(tmp_path):
    out = tmp_path / "quickstart"
    (out / "sft").mkdir(parents=True)
    (out / "rl").mkdir()
    sft_log = [{"step": s, "loss": 3.0 / s, "mean_token_accuracy": 0.1 * s, "readout_loss": 0.25} for s in range(1, 5)]
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
    assert "final loss 0.750 (of which read-out rehearsal 0.250), token accuracy 40.0%" in text
    assert {p.name for p in (out / "plots").iterdir()} == {"sft_loss.png", "rl_reward.png", "rl_paths.png",
                                                            "metrics.png"}

    results = {"baseline": {"sft": METRICS["sft"], "rl": METRICS["rl"]}, "minutes": 40.0, "variants": {
        name: {"ablation": v["ablation"], "sft": {p: stage(0.2)[p] for p in v["paths"]},
               "rl": {p: stage(0.4)[p] for p in v["paths"]}} for name, v in VARIANTS.items()}}
    results["variants"]["no_detection"]["paired"] = {"rl": {"dtr": {"accuracy": [0.01, 0.2]}}}
    (tmp_path / "ablations").mkdir()
    (tmp_path / "ablations" / "results.json").write_text(json.dumps(results))
    table = ablation_markdown(results)
    assert all(name in table for name in VARIANTS) and "40.0 min" in table
    assert "| no_detection | dtr | RL |" in table
    row = next(line for line in table.splitlines() if line.startswith("| RL with vs without the detection reward | "
                                                                       "no_detection | dtr | RL |"))
    change = results["variants"]["no_detection"]["rl"]["dtr"]["accuracy"] - METRICS["rl"]["dtr"]["accuracy"]
    assert f"{100 * change:+.1f} pt [+1.0 pt, +20.0 pt]" in row  # the change against the baseline, paired
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


def verdict(correct: bool, answer_type: str = "yesno", pred="yes", errors=(), path="dtr") -> dict:
    return {"id": "q", "correct": correct, "answer_type": answer_type, "pred": pred, "center_errors": list(errors),
            "path": path}


def test_bootstrap_intervals_cover_the_value_and_pair_differences():
    from sr_real.training.heldout import accuracy, figures_with_intervals, interval, paired_interval

    rows = [verdict(i % 4 != 0, errors=[0.1 * (i % 5)]) for i in range(200)]
    figures = figures_with_intervals(rows)
    low, high = figures["accuracy"]["ci"]
    assert low < figures["accuracy"]["value"] == 0.75 < high and high - low < 0.15  # ~ +-1.96 sqrt(.75 .25 / 200)
    assert figures["center_error_median_m"]["value"] == 0.2 and figures["top_yesno_share"]["value"] == 1.0
    assert interval(accuracy, rows) == interval(accuracy, rows)  # fixed seed: one run, one interval
    better = [dict(r, correct=True) for r in rows]
    low, high = paired_interval(accuracy, better, rows)
    assert 0.18 < low <= 0.25 <= high < 0.32  # paired: only the 50 changed questions vary


def test_baselines_answer_the_family_majority_and_lift_the_regions(tmp_path):
    import numpy as np
    import cv2
    from sr_real.training.heldout import baseline_rows

    depth = np.full((40, 40), 2000, np.uint16)  # 2 m everywhere, in millimetres
    cv2.imwrite(str(tmp_path / "depth.png"), depth)
    common = {"family": "left_right", "answer_type": "yesno", "category": "left_predicate", "question": "Is it?",
              "depth": "depth.png", "depth_unit": 0.001, "intrinsics": {"fx": 40, "fy": 40, "cx": 20, "cy": 20,
                                                                         "width": 40, "height": 40}}
    train = [dict(common, id=f"t{i}", solution="no" if i < 3 else "yes",
                  gt_centers=[{"ref": "red bbox", "center": [0.0, 0.0, float(i)]}]) for i in range(5)]
    heldout = [dict(common, id="h", solution="no", regions=[{"ref": "red bbox", "bbox_2d": [20, 20, 30, 30]}],
                    gt_centers=[{"ref": "red bbox", "center": [0.25, 0.25, 2.0]}])]
    heldout.append(dict(heldout[0], id="h2", solution="yes",  # two marked regions: the lift answers it
                        regions=[{"ref": "red bbox", "bbox_2d": [2, 20, 8, 30]}, {"ref": "blue bbox",
                                                                                  "bbox_2d": [30, 20, 38, 30]}],
                        gt_centers=[{"ref": "red bbox", "center": [-0.8, 0.25, 2.0]},
                                    {"ref": "blue bbox", "center": [0.7, 0.25, 2.0]}]))
    for name, records in (("train.jsonl", train), ("heldout.jsonl", heldout)):
        (tmp_path / name).write_text("".join(json.dumps(r) + "\n" for r in records))
    rows = baseline_rows(tmp_path / "train.jsonl", tmp_path / "heldout.jsonl")
    assert rows["prior"][0]["pred"] == "no" and rows["prior"][0]["correct"]  # 3 of 5 training answers
    assert abs(rows["prior"][0]["center_errors"][0] - np.linalg.norm([0.25, 0.25, 0.0])) < 1e-6  # median (0, 0, 2)
    assert rows["lift"][0]["center_errors"][0] < 0.05  # the box's 2 m plane, centred at (0.25, 0.25, 2)
    assert rows["lift"][0]["pred"] == "no"  # one object: centres do not decide it, the prior answers
    assert rows["prior"][1]["pred"] == "no" and rows["lift"][1]["pred"] == "yes" and rows["lift"][1]["correct"]


def test_answers_computed_from_the_true_centres_are_the_truths(tmp_path):
    """On generated questions (pitched cameras, every family), the answer `answer_from_centres` computes from
    the true camera-frame centres is the truth wherever centres decide it, and sizes are left undecided."""
    from sr_real.training.heldout import answer_from_centres
    from sr_real_core.answers import parse_length_m
    from sr_real_core.data.qa import QAConfig, generate_qa, load_qa
    from sr_real_core.data.synth import SynthConfig, synthesize

    scenes = synthesize(SynthConfig(num_scenes=3, seed=5, width=160, height=120), tmp_path / "synth", progress=False)
    records = load_qa(generate_qa(scenes, tmp_path / "qa", QAConfig(seed=2, per_scene=16), progress=False))
    decided = set()
    for record in records:
        answer = answer_from_centres(record, [c["center"] for c in record["gt_centers"]])
        if record["family"] in ("wide_thin", "tall_short", "big_small", "width", "height"):
            assert answer is None, record["id"]
        elif record["answer_type"] == "numeric":  # centimetre centres: the rounding moves a length < 1.5 cm
            assert abs(parse_length_m(answer) - record["solution"]) < 0.015, (record["id"], answer)
        else:
            assert answer == record["answer"], (record["id"], answer, record["answer"])
        decided |= {record["family"]} if answer is not None else set()
    assert {"left_right", "behind_front", "distance", "direction"} <= decided
    assert any(abs(u) > 0.1 for r in records for u in (r["up"][0], r["up"][2]))  # pitched: gravity matters


def _decided_record(id_: str, solution: str, refs=("red bbox", "blue point")) -> dict:
    return {"id": id_, "family": "left_right", "category": "left_predicate", "answer_type": "yesno",
            "question": "Is the red bbox <region> left of the blue point <region>?", "solution": solution,
            "up": [0.0, -1.0, 0.0], "gt_centers": [{"ref": ref, "center": [x, 0.0, 2.0]}
                                                  for ref, x in zip(refs, (-0.5, 0.5))]}


def test_dtr_answers_are_set_beside_the_answers_their_own_centres_give(tmp_path):
    from sr_real.training.heldout import centre_decided

    records = [_decided_record(f"q{i}", "yes") for i in range(4)] + [
        dict(_decided_record("size", "yes"), family="wide_thin", category="wide_predicate")]
    (tmp_path / "qa.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    left, right = [-0.4, 0.0, 2.0], [0.6, 0.0, 2.0]
    written = {"q0": [("red bbox", left), ("blue bbox", right)],    # right centres (the label aside), answered right
               "q1": [("red bbox", right), ("blue point", left)],   # swapped centres, answered right anyway
               "q2": [("red bbox", left)],                          # one centre for two objects: none computed
               "q3": [("red bbox", left), ("blue point", right)]}   # right centres, answered wrong
    rows = [dict(verdict(id_ != "q3"), id=id_, detections=[{"name": "thing", "ref": ref, "center": c}
                                                           for ref, c in written[id_]]) for id_ in written]
    rows.append(dict(verdict(True), id="size"))  # sizes are not decided by centres: left out
    result = centre_decided(rows, tmp_path / "qa.jsonl")
    assert result["n"] == 4
    assert result["answered"]["accuracy"]["value"] == 0.75 and result["computed"]["accuracy"]["value"] == 0.5
    assert result["answered"]["qualitative_accuracy"]["value"] == 0.75
    assert result["computed"]["quantitative_success"]["value"] is None  # no distance question here
    low, high = result["difference"]["accuracy"]
    assert low <= 0.25 <= high
    from sr_real.training.report import decided_table

    table = decided_table({"centre_decided": {"sft_dtr": result}})
    assert table.startswith("|  | questions | relative position, answered | relative position, from its centres")
    assert "| SFT DTR | 4 | 75.0% [" in table and "| 50.0% [" in table and "| +25.0 pt [" in table


def test_the_relation_step_of_each_dtr_chain_is_read_back_against_the_one_its_question_needs():
    from sr_real.training.heldout import reasoning_steps
    from sr_real.training.report import steps_table
    from sr_real_core.grammar import parse_completion

    axis = ("<detect>Find 2 relevant objects:\n<3d_box center=\"0.10,0.00,1.00\">cup</3d_box>\n"
            "<3d_box center=\"0.30,0.00,1.00\">box</3d_box></detect>\n<think>Reading x off the detected centres "
            "(x right, y down, z forward): the cup 0.10, the box 0.30. So the answer is yes.</think>\n"
            "<answer>yes</answer>")
    size = axis.replace("Reading x off the detected centres (x right, y down, z forward): the cup 0.10, the box 0.30.",
                        "From their 3D boxes, the width of the cup is 0.10 m and the width of the box is 0.20 m.")
    completions = {"lr": axis, "lr2": size, "wt": size,
                   "lor": "<think>It is on the left. So the answer is yes.</think>\n<answer>no</answer>",
                   "bare": axis.split("<think>")[0] + "<think>Hmm.</think>\n<answer>no</answer>"}
    rows = [{"id": id_, "path": parsed.path, "reasoning": parsed.think}  # as the scorer writes verdicts
            for id_, parsed in ((i, parse_completion(c)) for i, c in completions.items())]
    family_of = {"lr": "left_right", "lr2": "left_right", "wt": "wide_thin", "lor": "left_right",
                 "bare": "behind_front"}
    result = reasoning_steps(rows, family_of)
    assert result["n"] == 4  # the LOR completion took no DTR step to read
    assert result["right"]["value"] == 0.5
    assert result["by_step"] == {"axis": {"n": 3, "written": {"size": 1 / 3, "axis": 1 / 3, "none": 1 / 3}},
                                 "size": {"n": 1, "written": {"size": 1.0}}}
    table = steps_table({"reasoning_steps": {"rl_dtr": result}})
    assert "| RL DTR | axis | 3 | 33.3% | 33.3% | 0.0% | 0.0% | 0.0% | 33.3% |" in table
    assert "RL DTR 50.0% [" in table
