"""Bad input on the command line: each case exits 2 with one line naming the input (no traceback) and leaves no
output behind; checkpoints are safetensors by content; `ask` and the node core validate inputs the same way.

The CLI cases call `main(argv)` in-process (what the `sr-real` script does); a few run as subprocesses to
cover real argv bytes, the top-level exit code and `--debug`."""
import json
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sr_real.cli import main
from test_ros_query_service import tiny_model  # noqa: F401 - a fixture

REPO = Path(__file__).resolve().parents[1]
TABLETOP = REPO / "examples" / "tabletop" / "scenes.jsonl"
SPATIALRGPT = REPO / "tests" / "fixtures" / "eval" / "spatialrgpt" / "bench.jsonl"
BAG = REPO.parent / "shared" / "data" / "rosbag2" / "real_camera_fiducials" / "aruco_images.bag"
WIDTH, HEIGHT = 80, 60
K = {"fx": 60.0, "fy": 60.0, "cx": 39.5, "cy": 29.5, "width": WIDTH, "height": HEIGHT}


@pytest.fixture
def files(tmp_path, tiny_model, monkeypatch):  # noqa: F811 - the fixture imported above
    """Inputs of the cases, in tmp_path (also the working directory)."""
    Image.new("RGB", (WIDTH, HEIGHT), (100, 110, 120)).save(tmp_path / "img.png")
    np.save(tmp_path / "depth.npy", np.full((HEIGHT, WIDTH), 1.5, np.float32))
    for name, value in (("zero", 0.0), ("nan", np.nan), ("inf", np.inf), ("negative", -1.0)):
        np.save(tmp_path / f"depth-{name}.npy", np.full((HEIGHT, WIDTH), value, np.float32))
    (tmp_path / "K.json").write_text(json.dumps(K))
    (tmp_path / "K-swapped.json").write_text(json.dumps({**K, "cx": 29.5, "cy": 39.5, "width": HEIGHT,
                                                         "height": WIDTH}))
    (tmp_path / "K-double.json").write_text(json.dumps({**K, "fx": 120.0, "fy": 120.0, "cx": 79.5, "cy": 59.5,
                                                        "width": 2 * WIDTH, "height": 2 * HEIGHT}))
    (tmp_path / "bad.jsonl").write_text('{"scene_id": "a", "image": "x.png"}\n')
    (tmp_path / "a-file").write_text("x")
    (tmp_path / "qa.jsonl").write_text("not json\n")
    (tmp_path / "zero-depth-qa.jsonl").write_text(json.dumps({"id": "z1", "image": "img.png", "depth": "depth-zero.npy",
                                                              "question": "How far?", "answer_type": "numeric",
                                                              "solution": 1.0}) + "\n")
    (tmp_path / "good-qa.jsonl").write_text(json.dumps({"id": "a", "image": "img.png", "question": "How far?",
                                                        "answer_type": "numeric", "solution": 1.0}) + "\n")
    corrupt = tmp_path / "corrupt-model"
    shutil.copytree(tiny_model, corrupt)
    data = (tiny_model / "model.safetensors").read_bytes()
    (corrupt / "model.safetensors").write_bytes(data[:len(data) // 3])  # an interrupted copy
    monkeypatch.chdir(tmp_path)
    return {"tmp": str(tmp_path), "tiny": str(tiny_model), "corrupt": str(corrupt), "tabletop": str(TABLETOP)}


def run(argv):
    """main's exit code; argparse's usage errors exit through SystemExit."""
    try:
        return main(argv)
    except SystemExit as exit_:
        return exit_.code


ASK = ["ask", "How far is the chair (red bbox) <region>?", "--model", "{tiny}", "--image", "img.png"]
PLAIN_ASK = ["ask", "How far is it?", "--model", "{tiny}", "--image", "img.png"]

# (argv, words the one error line must contain, paths that must not exist afterwards)
CASES = {
    "lift-missing-file": (["lift", "missing.jsonl"], "missing.jsonl: No such file", []),
    "lift-bad-scenes": (["lift", "bad.jsonl"], "bad.jsonl:1: intrinsics", []),
    "demo-missing-file": (["demo", "--scenes", "missing.jsonl"], "missing.jsonl: No such file", []),
    "demo-bad-scenes": (["demo", "--scenes", "bad.jsonl"], "bad.jsonl:1: intrinsics", []),
    "qa-missing-file": (["data", "qa", "missing.jsonl", "--out", "qa-out"], "missing.jsonl", ["qa-out"]),
    "qa-bad-scenes": (["data", "qa", "bad.jsonl", "--out", "out/qa"], "bad.jsonl:1: intrinsics", ["out"]),
    "qa-negative-per-scene": (["data", "qa", "{tabletop}", "--per-scene", "-3", "--out", "qa-out"],
                              "--per-scene: expected a positive integer", ["qa-out"]),
    "build-missing-config": (["data", "build", "--config", "missing.yaml"], "missing.yaml: No such file", []),
    "build-before-synth": (["data", "build", "--config", str(REPO / "training/configs/data-tiny.yaml")],
                           "render the scenes first: sr-real data synth", ["runs"]),
    "synth-negative-count": (["data", "synth", "--num-scenes", "-2", "--out", "s"], "positive integer", ["s"]),
    "synth-zero-size": (["data", "synth", "--num-scenes", "1", "--size", "0x0", "--out", "s"], "--size", ["s"]),
    "tiny-onto-a-file": (["model", "tiny", "--out", "a-file"], "'a-file' is an existing file", []),
    "region-infinite": ([*ASK, "--region", "0,0,inf,inf"], "finite numbers", []),
    "region-negative": ([*ASK, "--region", "-50,0,10,10"], "region 1: [-50.0, 0.0, 10.0, 10.0] is not a box inside",
                        []),
    "question-not-utf8": (["ask", "How far \udcff?", *PLAIN_ASK[2:]], "question: not valid UTF-8", []),
    "question-empty": (["ask", "  ", *PLAIN_ASK[2:]], "question: empty", []),
    "question-100k": (["ask", "How far? " * 12_000, *PLAIN_ASK[2:]], "more than the limit", []),
    "device-bogus": ([*PLAIN_ASK, "--device", "bogus"], "unknown device 'bogus'", []),
    "max-new-tokens-zero": ([*PLAIN_ASK, "--max-new-tokens", "0"], "--max-new-tokens", []),
    "depth-all-zero": ([*PLAIN_ASK, "--depth", "depth-zero.npy"], "depth: no valid pixel", []),
    "depth-all-nan": ([*PLAIN_ASK, "--depth", "depth-nan.npy"], "depth: no valid pixel", []),
    "depth-all-inf": ([*PLAIN_ASK, "--depth", "depth-inf.npy"], "depth: no valid pixel", []),
    "depth-all-negative": ([*PLAIN_ASK, "--depth", "depth-negative.npy"], "depth: no valid pixel", []),
    "intrinsics-without-depth": ([*PLAIN_ASK, "--intrinsics", "K.json"], "--intrinsics needs --depth", []),
    "intrinsics-swapped": ([*PLAIN_ASK, "--depth", "depth.npy", "--intrinsics", "K-swapped.json"],
                           "another aspect ratio", []),
    "ask-corrupt-checkpoint": (["ask", "How far?", "--model", "{corrupt}", "--image", "img.png"],
                               "corrupt-model/model.safetensors: corrupt safetensors file", []),
    "eval-corrupt-checkpoint": (["eval", "--qa", "good-qa.jsonl", "--model", "{corrupt}", "--out", "run"],
                                "corrupt-model/model.safetensors: corrupt safetensors file", ["run"]),
    "eval-depth-without-valid-pixel": (["eval", "--qa", "zero-depth-qa.jsonl", "--model", "{tiny}", "--out", "run"],
                                       "record(s) z1: depth: no valid pixel", ["run"]),
    "eval-bad-qa": (["eval", "--qa", "qa.jsonl", "--predictions", "qa.jsonl", "--out", "run"], "qa.jsonl:1",
                    ["run"]),
    "eval-batch-size-zero": (["eval", "--qa", "qa.jsonl", "--model", "{tiny}", "--out", "run", "--batch-size", "0"],
                             "--batch-size", ["run"]),
    "import-other-benchmark": (["eval", "import", "qspatial", str(SPATIALRGPT), "--out", "imported/q.jsonl"],
                               "no qspatial records", ["imported"]),
    "serve-corrupt-checkpoint": (["serve", "--model", "{corrupt}", "--duration", "0.1"],
                                 "corrupt-model/model.safetensors: corrupt safetensors file", []),
    "serve-domain-999": (["serve", "--model", "{tiny}", "--domain-id", "999"], "999 is outside 0 to 232", []),
    "serve-bag-without-query": (["serve", "--model", "{tiny}", "--bag", str(BAG)], "--bag and --query go together",
                                []),
}


@pytest.mark.parametrize("name", CASES)
def test_a_user_error_exits_2_with_one_line_and_leaves_nothing(name, files, capsys):
    argv, words, absent = CASES[name]
    code = run([part.format(**files) for part in argv])
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if "error" in line.lower()]
    assert code == 2, err
    assert "Traceback" not in err and len(errors) == 1, err
    assert words in errors[0] and errors[0].startswith("sr-real "), err
    assert not [path for path in absent if Path(path).exists()]
    assert not list(Path(files["tmp"]).glob(".*.partial"))


def test_the_environment_s_domain_id_is_checked_when_serving(files, capsys, monkeypatch):
    monkeypatch.setenv("ROS_DOMAIN_ID", "abc")
    assert run(["serve", "--model", files["tiny"], "--duration", "0.1"]) == 2
    assert "ROS_DOMAIN_ID" in capsys.readouterr().err


def test_ask_rescales_intrinsics_of_the_same_aspect_ratio_and_says_so(files, capsys):
    assert run([*[part.format(**files) for part in PLAIN_ASK], "--depth", "depth.npy", "--intrinsics",
                "K-double.json", "--max-new-tokens", "4"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["notes"] == ["intrinsics calibrated for 160x120 rescaled to the 80x60 image"]


@pytest.mark.skipif(not BAG.is_file(), reason="../shared/data/rosbag2 is not available")
def test_serve_bag_refuses_an_image_topic_the_bag_lacks(files, capsys):
    assert run(["serve", "--model", "/no/such/model", "--bag", str(BAG), "-p", "image_topic=/camera/nope",
                "--query", "x"]) == 2
    err = capsys.readouterr().err
    assert "-p image_topic=/camera/nope: no such topic" in err and "sensor_msgs/msg/CompressedImage" in err


@pytest.mark.skipif(not BAG.is_file(), reason="../shared/data/rosbag2 is not available")
def test_serve_bag_exits_1_when_no_query_was_answered(files, capsys):
    assert run(["serve", "--model", files["tiny"], "--bag", str(BAG), "--query", '{"question": "x", "path": "no"}',
                "--query", '{"question": "y", "regions": [[0, 0, 1e999, 5]]}']) == 1
    captured = capsys.readouterr()
    assert [json.loads(line)["status"] for line in captured.out.splitlines()] == ["error", "error"]
    assert "none of the 2 queries was answered" in captured.err


# ------------------------------------------------------------------ checkpoints: safetensors by content

def _indexed_checkpoint(tiny, tmp_path, name, write):
    """The tiny checkpoint whose weights are only `name`, named by a safetensors index."""
    directory = tmp_path / "indexed"
    shutil.copytree(tiny, directory)
    from safetensors.torch import load_file

    state = load_file(directory / "model.safetensors")
    (directory / "model.safetensors").unlink()
    write(directory / name, state)
    index = {"metadata": {}, "weight_map": {key: name for key in state}}
    (directory / "model.safetensors.index.json").write_text(json.dumps(index))
    return directory


class _Hostile:
    """Unpickling it creates a file: proof that the pickle was run."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def test_a_torch_saved_state_dict_named_by_the_index_is_refused(files, tmp_path, capsys):
    import torch

    directory = _indexed_checkpoint(Path(files["tiny"]), tmp_path, "pytorch_model.bin",
                                    lambda path, state: torch.save(state, path))
    assert run(["ask", "How far?", "--model", str(directory), "--image", "img.png"]) == 2
    err = capsys.readouterr().err
    assert "indexed/pytorch_model.bin: not a safetensors file" in err and "Traceback" not in err


def test_a_hostile_pickle_named_by_the_index_is_never_read(files, tmp_path, capsys):
    marker = tmp_path / "pwned"
    directory = _indexed_checkpoint(Path(files["tiny"]), tmp_path, "weights.bin",
                                    lambda path, state: path.write_bytes(pickle.dumps(_Hostile(marker))))
    assert run(["ask", "How far?", "--model", str(directory), "--image", "img.png"]) == 2
    assert "indexed/weights.bin: not a safetensors file" in capsys.readouterr().err
    assert not marker.exists()


@pytest.mark.parametrize("content", [b"", b"\x00" * 4, os.urandom(4096), b"PK\x03\x04" + os.urandom(64)])
def test_random_or_truncated_weights_are_named(files, content, capsys):
    (Path(files["corrupt"]) / "model.safetensors").write_bytes(content)
    assert run(["ask", "How far?", "--model", files["corrupt"], "--image", "img.png"]) == 2
    err = capsys.readouterr().err
    assert "corrupt-model/model.safetensors: " in err and "Traceback" not in err


# ------------------------------------------------------------------ the real command line

def sr_real(*argv, env=None, cwd=None):
    environment = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    return subprocess.run([sys.executable, "-m", "sr_real.cli", *argv], capture_output=True, env=environment,
                          cwd=cwd, timeout=120)


def test_real_argv_bytes_and_the_traceback_on_request(tmp_path):
    undecodable = sr_real("ask", b"How far \xff?", "--model", "m", "--image", "i.png")
    assert undecodable.returncode == 2 and b"Traceback" not in undecodable.stderr
    assert undecodable.stderr.decode().strip() == ("sr-real ask: error: question: not valid UTF-8 text "
                                                   "(character 8); give the question as UTF-8")
    missing = sr_real("lift", "missing.jsonl", cwd=tmp_path)
    assert (missing.returncode, missing.stderr) == (2, b"sr-real lift: error: missing.jsonl: No such file or "
                                                       b"directory\n")
    debug = sr_real("--debug", "lift", "missing.jsonl", cwd=tmp_path)
    assert debug.returncode == 1 and b"Traceback" in debug.stderr and b"FileNotFoundError" in debug.stderr
    assert b"Traceback" in sr_real("lift", "missing.jsonl", cwd=tmp_path, env={"SR_REAL_DEBUG": "1"}).stderr


def test_help_texts(capsys):
    for argv in (["ask", "--help"], ["data", "synth", "--help"], ["data", "qa", "--help"], ["eval", "--help"]):
        assert run(argv) == 0
    text = " ".join(capsys.readouterr().out.split())
    for words in ("inference backend; default: onnxruntime", "--max-new-tokens MAX_NEW_TOKENS most tokens",
                  "--num-scenes NUM_SCENES scenes to render", "--seed SEED layout and camera seed",
                  "--seed SEED question sampling seed", "sr-real eval [-h]", "[ACTION] ..."):
        assert words in text, words
    readme = (REPO / "README.md").read_text()
    assert "| `sr-real train" in readme


def test_the_rclpy_node_names_a_corrupt_checkpoint_and_exits_2(files):
    pytest.importorskip("rclpy", reason="needs rclpy (make test installs the ROS 2 wheels)")
    node = subprocess.run([sys.executable, "-m", "sr_real.spatial_query_node", "--ros-args", "-p",
                           f"model:={files['corrupt']}"], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    output = node.stdout + node.stderr
    assert node.returncode == 2 and "Traceback" not in output, output
    assert "corrupt-model/model.safetensors: corrupt safetensors file" in output
