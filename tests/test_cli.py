"""The `sr-real` entry point: `lift` and `demo` on the bundled example, and CameraInfo from a real robot bag."""
import json
from pathlib import Path

import numpy as np
import pytest

from sr_real.cli import main
from sr_real_core.geometry import Intrinsics
from sr_real_core.scenes import load_scenes

REPO = Path(__file__).resolve().parents[1]
TABLETOP = REPO / "examples" / "tabletop" / "scenes.jsonl"
REAL_BAG = REPO.parent / "shared" / "data" / "rosbag2" / "real_camera_fiducials" / "aruco_images_mcap"


def test_lift_prints_one_record_per_object_close_to_the_truth(capsys):
    assert main(["lift", str(TABLETOP), "--strict"]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    scene = load_scenes(TABLETOP)[0]
    assert [r["object_index"] for r in records] == list(range(len(scene.objects)))
    for record, obj in zip(records, scene.objects):
        assert record["name"] == obj.name and record["n_points"] > 100
        assert np.linalg.norm(np.subtract(record["center_3d"], obj.center_3d)) < 0.03


def test_lift_reports_an_unliftable_region_without_aborting(tmp_path, capsys):
    record = json.loads(TABLETOP.read_text().splitlines()[0])
    depth = np.zeros((record["intrinsics"]["height"], record["intrinsics"]["width"]), np.float32)
    np.save(tmp_path / "depth.npy", depth)  # every pixel invalid: no region can be lifted
    record.update(image=str(TABLETOP.parent / "rgb.png"), depth="depth.npy", depth_unit=1.0)
    for obj in record["objects"]:
        obj.pop("mask", None)
    (tmp_path / "scenes.jsonl").write_text(json.dumps(record) + "\n")
    assert main(["lift", str(tmp_path / "scenes.jsonl"), "--strict"]) == 1
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(records) == len(record["objects"]) and all("error" in r for r in records)


def test_demo_runs_the_core_end_to_end(capsys):
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    assert "72/72 pairwise predicates agree" in out
    assert "parsed path=dtr well_formed=True" in out
    assert "errors=['missing </think>']" in out


@pytest.mark.skipif(not REAL_BAG.exists(), reason="needs ../shared/data (real robot camera bags)")
def test_camera_info_from_a_real_robot_bag():
    from rosbags.highlevel import AnyReader
    from rosbags.typesys import Stores, get_typestore

    with AnyReader([REAL_BAG], default_typestore=get_typestore(Stores.ROS2_HUMBLE)) as reader:
        connection = next(c for c in reader.connections if c.msgtype == "sensor_msgs/msg/CameraInfo")
        _, _, raw = next(reader.messages(connections=[connection]))
        message = reader.deserialize(raw, connection.msgtype)
    intrinsics = Intrinsics.from_camera_info(message)
    assert (intrinsics.width, intrinsics.height) == (1280, 960)
    assert intrinsics.distortion_model == "plumb_bob"
    assert intrinsics.fx == pytest.approx(1014.34, abs=0.01) and intrinsics.cy == pytest.approx(469.57, abs=0.01)
    ray = intrinsics.backproject(intrinsics.cx, intrinsics.cy, 2.0)
    assert np.allclose(ray, [0.0, 0.0, 2.0])
