"""Recorded robot camera streams (../shared/data/rosbag2: a Raspberry Pi camera, JPEG CompressedImage +
CameraInfo, as ROS 1 bags and rosbag2 mcap/sqlite3) through the node core's conversion path, and broken bags."""
import json
from pathlib import Path

import numpy as np
import pytest

from sr_real.cli import main
from sr_real_core.ros.bag import BagError, bag_connections, bag_topics, play_bag, read_bag
from sr_real_core.ros.config import SpatialQueryConfig
from sr_real_core.ros.msgs import camera_info_intrinsics, compressed_to_rgb
from sr_real_core.ros.service import SpatialQueryService
from support.scripted import ScriptedEngine
from test_ros_query_service import tiny_model  # noqa: F401 - a fixture

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "rosbag2"
CAMERA = SHARED / "real_camera_fiducials"
FIXTURES = SHARED / "format_fixtures"
BROKEN = FIXTURES / "rosbag2_tests" / "resources" / "mcap" / "wrong_rmw_test"
pytestmark = pytest.mark.skipif(not CAMERA.is_dir(), reason="../shared/data/rosbag2 is not available")


@pytest.mark.parametrize("bag", ["aruco_images_mcap", "aruco_images_sqlite3", "aruco_images.bag"])
def test_real_camera_messages_decode(bag):
    images, intrinsics = [], []
    for topic, message in read_bag(CAMERA / bag):
        if topic == "/raspicam_node/image/compressed":
            images.append(compressed_to_rgb(message))
        elif topic == "/raspicam_node/camera_info":
            intrinsics.append(camera_info_intrinsics(message))
    assert len(images) == 1 and len(intrinsics) == 15
    assert images[0].shape == (960, 1280, 3) and images[0].dtype == np.uint8 and images[0].std() > 10
    camera = intrinsics[0]
    assert (camera.width, camera.height, camera.distortion_model) == (1280, 960, "plumb_bob")
    assert camera.fx == pytest.approx(1014.34, abs=0.01) and camera.cy == pytest.approx(469.57, abs=0.01)


def test_a_real_bag_through_the_service():
    config = bag_topics(bag_connections(CAMERA / "fiducial_board_611_mcap"), SpatialQueryConfig(model="unused"))
    assert (config.image_topic, config.image_transport, config.depth_topic) == (
        "/raspicam_node/camera/image", "compressed", "")
    engine = ScriptedEngine('<detect>Find 1 relevant object:\n<3d_box center="0.10,0.05,0.90">board (red bbox)'
                            "</3d_box></detect>\n<think>Close.</think>\n<answer>0.9 m</answer>")
    published = []
    service = SpatialQueryService(engine, config, lambda key, message: published.append((key, message)))
    service.start()
    try:
        assert play_bag(CAMERA / "fiducial_board_611_mcap", service) == 33
        assert service.frame_counts()["synchronised"] == 1
        service.on_query(json.dumps({"question": "How far is the board (red bbox) <region>?",
                                     "regions": [[500, 300, 800, 600]]}))
    finally:
        service.stop()  # after the queued query
    answers = [json.loads(message["data"]) for key, message in published if key == "answer"]
    assert answers[0]["status"] == "ok" and answers[0]["detections"][0]["measured"] is None  # no depth in the bag
    call, = engine.calls
    assert call["image_shape"] == (720, 1280, 3) and call["depth_shape"] is None
    assert call["intrinsics"].fx == pytest.approx(1276.70, abs=0.01)
    markers = next(message for key, message in published if key == "markers")["markers"]
    assert markers[1]["header"]["frame_id"] == "raspicam"


@pytest.mark.parametrize("path, message", [
    (BROKEN, "Serialization format {'wrong_format'} is not supported"),
    (FIXTURES / "rosbag2_tests" / "resources" / "empty_dir", "not a readable bag"),
    (FIXTURES / "no_such_bag", "not a readable bag"),
])
def test_broken_bags_give_a_clear_error(path, message):
    with pytest.raises(BagError, match=message) as raised:
        bag_connections(path)
    assert str(path) in str(raised.value)


def test_a_bag_without_a_camera_stream_is_refused():
    talker = FIXTURES / "rosbag2_py" / "test" / "resources" / "mcap" / "talker"
    with pytest.raises(BagError, match=r"no single colour image and CameraInfo stream .* /topic \(std_msgs/msg/"):
        bag_topics(bag_connections(talker), SpatialQueryConfig())


def test_serve_a_broken_bag_fails_before_loading_a_model(capsys):
    assert main(["serve", "--model", "/no/such/model", "--bag", str(BROKEN), "--query", "x"]) == 2
    assert "wrong_format" in capsys.readouterr().err


def test_serve_a_real_bag_with_the_real_engine(tiny_model, capsys):
    question = json.dumps({"question": "How far is the board (red bbox) <region>?", "regions": [[400, 200, 900, 700]],
                           "id": "bag-1"})
    assert main(["serve", "--model", str(tiny_model), "-p", "max_new_tokens=16", "--bag",
                 str(CAMERA / "aruco_images.bag"), "--query", "What is in front of the camera?",
                 "--query", question]) == 0
    first, second = (json.loads(line) for line in capsys.readouterr().out.splitlines())
    assert first["status"] == "ok" and first["requested_path"] == "lor"
    assert second["status"] == "ok" and second["id"] == "bag-1" and second["requested_path"] == "dtr"
