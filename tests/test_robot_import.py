"""`sr-real data from-bag`: real robot camera bags (../shared/data/rosbag2: JPEG CompressedImage + CameraInfo, no
depth), rosbag2's own format fixtures, and a synthetic RGB-D recording written with rosbags from rendered scenes."""
import json
from pathlib import Path

import numpy as np
import pytest

from sr_real.cli import main
from sr_real_core.data import robot
from sr_real_core.data.from_bag import REPORT_FILE, BagImportConfig, BagImportError, import_bag
from sr_real_core.data.synth import SynthConfig, synthesize
from sr_real_core.scenes import load_scenes
from support.robot_bag import IMPORT_ARGS, write_robot_bag

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "rosbag2"
CAMERA = SHARED / "real_camera_fiducials"
FIXTURES = SHARED / "format_fixtures"
RASPICAM = ["--image-topic", "/raspicam_node/image", "--info-topic", "/raspicam_node/camera_info"]
needs_shared = pytest.mark.skipif(not CAMERA.is_dir(), reason="../shared/data/rosbag2 is not available")


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    return load_scenes(synthesize(SynthConfig(num_scenes=6, seed=3, width=160, height=120),
                                  tmp_path_factory.mktemp("synth"), progress=False))


@pytest.fixture(scope="module")
def robot_bag(rendered, tmp_path_factory):
    return write_robot_bag(rendered, tmp_path_factory.mktemp("bags") / "robot")


@needs_shared
@pytest.mark.parametrize("bag", ["aruco_images.bag", "aruco_images_mcap", "aruco_images_sqlite3"])
def test_real_camera_bags_import_images_and_intrinsics(bag, tmp_path, capsys):
    assert main(["data", "from-bag", str(CAMERA / bag), *RASPICAM, "--out", str(tmp_path / "out")]) == 0
    printed = capsys.readouterr().out
    assert "imported 1 of 1 colour frames" in printed and "3D labels: unavailable" in printed
    scene, = load_scenes(tmp_path / "out" / robot.SCENES_FILE)
    assert (scene.intrinsics.width, scene.intrinsics.height) == (1280, 960)
    assert scene.intrinsics.fx == pytest.approx(1014.34, abs=0.01)
    assert scene.depth is None and scene.extra["labels_3d"] == "unavailable"
    assert scene.load_image().shape == (960, 1280, 3)
    assert scene.resolve(scene.image).read_bytes()[:3] == b"\xff\xd8\xff"  # the camera's JPEG, not re-encoded
    report = json.loads((tmp_path / "out" / REPORT_FILE).read_text())
    assert report["complete"] and report["topics"]["/raspicam_node/camera_info"]["read"] == 15
    assert report["topics"]["/raspicam_node/camera_info"]["in_metadata"] == 15


@needs_shared
def test_a_ros1_bag_with_a_relative_topic_name(tmp_path):
    report = import_bag(CAMERA / "fiducial_board_611.bag", tmp_path / "out",
                        BagImportConfig("raspicam_node/camera/image", "/raspicam_node/camera/camera_info"))
    assert report["frames"]["imported"] == 1 and report["topics"]["/raspicam_node/camera/camera_info"]["read"] == 32


@needs_shared
@pytest.mark.parametrize("bag, message", [
    ("rosbag2_py/test/resources/sqlite3/talker", "--image-topic /raspicam_node/image: is not in the bag; the bag "
                                                 "has /parameter_events (ParameterEvent, 0), /rosout (Log, 10)"),
    ("rosbag2_py/test/resources/mcap/wbag", "is not in the bag; the bag has /AAA (String, 804)"),  # split in 5 files
    ("rosbag2_tests/resources/empty_dir", "not a readable bag: Expected metadata file"),
    ("rosbag2_tests/resources/mcap/wrong_rmw_test", "not a readable bag: Serialization format {'wrong_format'}"),
    ("rosbag2_tests/resources/mcap/bag_with_topics_and_service_events", "not a readable bag: Could not parse: ..."),
])
def test_format_fixtures_are_refused_with_one_line(bag, message, tmp_path, capsys):
    assert main(["data", "from-bag", str(FIXTURES / bag), *RASPICAM, "--out", str(tmp_path / "out")]) == 2
    error = capsys.readouterr().err
    assert message in error and error.count("\n") == 1 and "Traceback" not in error
    assert list(tmp_path.iterdir()) == []  # nothing left behind


def test_rgbd_bag_gives_measured_objects_queries_and_feedback(rendered, robot_bag, tmp_path, capsys):
    assert main(["data", "from-bag", str(robot_bag), *IMPORT_ARGS, "--out", str(tmp_path / "out")]) == 0
    assert "imported 6 of 6 colour frames" in capsys.readouterr().out
    scenes = load_scenes(tmp_path / "out" / robot.SCENES_FILE)
    errors = []
    for truth, scene in zip(rendered, scenes):
        assert scene.extra["labels_3d"] == "measured" and scene.load_depth().shape == (120, 160)
        assert np.allclose(scene.load_image(), truth.load_image())  # raw rgb8 -> lossless PNG
        by_name = {obj.name: obj for obj in truth.objects}
        detected = [obj for obj in scene.objects if obj.extra["source"] == "detections"]
        assert [obj.name for obj in detected] == [obj.name for obj in truth.objects]
        errors += [np.linalg.norm(np.subtract(obj.center_3d, by_name[obj.name].center_3d)) for obj in detected
                   if obj.extra.get("measured") and max(by_name[obj.name].size_3d) < 0.3]  # small: seen ~ whole
        query_object, = (obj for obj in scene.objects if obj.extra["source"] == "query")
        assert query_object.name == truth.objects[0].name and query_object.extra["ref"] == "red bbox"
    assert len(errors) >= 5 and np.median(errors) < 0.08  # measured from depth: near the true (amodal) centres
    queries = [scene.extra["queries"][0] for scene in scenes]
    assert [q["feedback"] for q in queries][:2] == [{"id": "q0", "answer": queries[0]["feedback"]["answer"]},
                                                    {"id": "q1", "verdict": "correct"}]
    report = json.loads((tmp_path / "out" / REPORT_FILE).read_text())
    assert report["complete"] and report["queries"] == {"answered_in_bag": 6, "on_imported_frames": 6,
                                                        "with_feedback": 5, "feedback_in_bag": 5}


def test_unsynchronised_depth_is_skipped_and_counted(rendered, tmp_path):
    bag = write_robot_bag(rendered[:3], tmp_path / "late", storage="sqlite3", depth_offset_s=0.5)
    with pytest.raises(BagImportError, match=r"no frame could be imported \(3 unsynchronised\)"):
        import_bag(bag, tmp_path / "out", BagImportConfig(*IMPORT_ARGS[1:4:2], depth_topic=IMPORT_ARGS[5]))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["late"]
    report = import_bag(bag, tmp_path / "out", BagImportConfig(*IMPORT_ARGS[1:4:2], depth_topic=IMPORT_ARGS[5],
                                                                slop_s=0.6))
    assert report["frames"]["imported"] == 3


def test_rate_and_motion_select_frames(rendered, robot_bag, tmp_path):
    config = BagImportConfig(*IMPORT_ARGS[1:4:2], rate_hz=4.0)  # frames are 0.1 s apart: every third one
    assert import_bag(robot_bag, tmp_path / "rate", config)["frames"]["skipped"] == {"rate": 4}
    still = write_robot_bag([rendered[0]] * 3 + [rendered[1]], tmp_path / "still")
    report = import_bag(still, tmp_path / "moved", BagImportConfig(*IMPORT_ARGS[1:4:2], min_change=2.0))
    assert report["frames"]["imported"] == 2 and report["frames"]["skipped"] == {"camera still": 2}


def test_a_failure_midway_leaves_nothing(robot_bag, tmp_path, monkeypatch):
    calls = []

    def failing(folder, stem, depth):
        calls.append(stem)
        if len(calls) == 3:
            raise OSError("disk full")
        return original(folder, stem, depth)

    original = robot.save_depth
    monkeypatch.setattr(robot, "save_depth", failing)
    with pytest.raises(OSError, match="disk full"):
        import_bag(robot_bag, tmp_path / "out", BagImportConfig(*IMPORT_ARGS[1:4:2], depth_topic=IMPORT_ARGS[5]))
    assert list(tmp_path.iterdir()) == []


def test_bad_options_are_user_errors(robot_bag, tmp_path, capsys):
    assert main(["data", "from-bag", str(robot_bag), "--image-topic", "/camera/color/camera_info", "--info-topic",
                 "/camera/color/camera_info", "--out", str(tmp_path / "a")]) == 2
    assert "is a sensor_msgs/msg/CameraInfo, expected sensor_msgs/msg/Image or" in capsys.readouterr().err
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("keep")
    assert main(["data", "from-bag", str(robot_bag), *IMPORT_ARGS[:4], "--out", str(tmp_path / "full")]) == 2
    assert "exists and is not empty" in capsys.readouterr().err
    assert main(["data", "from-bag", str(robot_bag), *IMPORT_ARGS[:4], "--slop", "-1", "--out", "x"]) == 2


def test_labels_turn_confirmed_queries_into_qa_and_frames_into_scenes(rendered, robot_bag, tmp_path, capsys):
    from sr_real_core.data.labels import QA_FILE, SFT_FILE
    from sr_real_core.data.qa import QAConfig, generate_qa
    from sr_real_core.evaluation.records import load_qa
    from support.robot_bag import truth_m

    import_bag(robot_bag, tmp_path / "robot", BagImportConfig(*IMPORT_ARGS[1::2]))
    assert main(["data", "labels", str(tmp_path / "robot"), "--out", str(tmp_path / "labels")]) == 0
    counts = json.loads(capsys.readouterr().out)
    assert counts == {"frames": 6, "frames_with_3d_objects": 6, "labelled": 5, "queries": 6,
                      "unlabelled: no feedback": 1}
    records = {record.id.rsplit("-", 1)[1]: record for record in load_qa(tmp_path / "labels" / QA_FILE)}
    assert records["q0"].solution == pytest.approx(truth_m(rendered[0]), abs=0.006)  # the operator's answer
    assert records["q1"].solution == 1.0 and records["q1"].answer_type == "numeric"  # "correct": the model's
    assert records["q0"].resolve("image").is_file() and records["q0"].gt_centers[0][0] == "red bbox"
    sft = [json.loads(line) for line in (tmp_path / "labels" / SFT_FILE).read_text().splitlines()]
    assert len(sft) == 5 and sft[0]["messages"][1]["content"] == records["q0"].raw["answer"]
    questions = generate_qa(tmp_path / "labels" / "scenes.jsonl", tmp_path / "qa", QAConfig(per_scene=3),
                            progress=False)
    assert len(load_qa(questions)) >= 12  # the question generator asks about the measured objects
    assert main(["data", "labels", str(tmp_path / "robot"), "--out", str(tmp_path / "labels")]) == 2


def test_a_corrupt_message_is_skipped_and_counted(rendered, tmp_path):
    from rosbags.rosbag2 import StoragePlugin, Writer

    from sr_real_core.ros.bag_writer import camera_info_dict
    from sr_real_core.ros.msgs import image_dict, time_dict
    from sr_real_core.ros.types import rosbags_message, typestore

    store, scene = typestore(), rendered[0]
    with Writer(tmp_path / "corrupt", version=8, storage_plugin=StoragePlugin.MCAP) as writer:
        image = writer.add_connection(IMPORT_ARGS[1], "sensor_msgs/msg/Image", typestore=store)
        info = writer.add_connection(IMPORT_ARGS[3], "sensor_msgs/msg/CameraInfo", typestore=store)
        for index in range(3):
            header = {"stamp": time_dict(10.0 + index), "frame_id": "camera"}
            writer.write(info, index, store.serialize_cdr(rosbags_message(
                "sensor_msgs/msg/CameraInfo", camera_info_dict(scene.intrinsics, header)), "sensor_msgs/msg/CameraInfo"))
            data = store.serialize_cdr(rosbags_message("sensor_msgs/msg/Image", image_dict(scene.load_image(), header)),
                                       "sensor_msgs/msg/Image")
            writer.write(image, index, data[:40] if index == 1 else data)  # truncated in the middle of a field
    report = import_bag(tmp_path / "corrupt", tmp_path / "out", BagImportConfig(*IMPORT_ARGS[1:4:2]))
    assert report["frames"] == {"colour_messages": 3, "imported": 2, "skipped": {"corrupt message": 1}}
    assert report["topics"][IMPORT_ARGS[1]]["corrupt"] == 1 and report["complete"]
