"""The ROS 2 package: `colcon build` installs what `ros2 launch sr_real spatial_query.launch.py` needs; the
launch file, parameter file and RViz config agree with the node; nothing of it needs ROS to import."""
import ast
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from sr_real import ros_env
from sr_real.cli import main
from sr_real_core.ros.config import SpatialQueryConfig, parameter_specs
from sr_real_core.ros.service import OUTPUT_ENDPOINTS

ROOT = Path(__file__).resolve().parents[1]
COLCON = Path(sys.executable).with_name("colcon")


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """`colcon build` of a workspace whose src/sr_real links to the repository, as ros_ws/src/sr_real does."""
    workspace = tmp_path_factory.mktemp("ros_ws")
    (workspace / "src").mkdir()
    (workspace / "src" / "sr_real").symlink_to(ROOT, target_is_directory=True)
    result = subprocess.run([str(COLCON), "build", "--event-handlers", "console_direct-"], cwd=workspace,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    return workspace / "install" / "sr_real"


def test_colcon_installs_what_ros2_launch_needs(installed):
    share = installed / "share"
    assert (share / "ament_index" / "resource_index" / "packages" / "sr_real").is_file()
    assert ET.parse(share / "sr_real" / "package.xml").getroot().findtext("name") == "sr_real"
    assert (share / "sr_real" / "launch" / "spatial_query.launch.py").is_file()
    assert {path.name for path in (share / "sr_real" / "config").iterdir()} == {"spatial_query.yaml", "sr_real.rviz"}
    executable = installed / "lib" / "sr_real" / "spatial_query_node"
    assert executable.is_file() and executable.stat().st_mode & 0o111
    assert "spatial_query_node" in executable.read_text()
    site = next((installed / "lib").glob("python3*/site-packages"))
    assert (site / "sr_real" / "spatial_query_node.py").is_file()
    assert (site / "sr_real_core" / "ros" / "service.py").is_file()
    assert (site / "sr_real" / "training" / "grpo.py").is_file() and not (site / "training").exists()


def test_package_xml_declares_the_node_dependencies():
    root = ET.parse(ROOT / "package.xml").getroot()
    assert root.get("format") == "3" and root.findtext("export/build_type") == "ament_python"
    depends = {element.text for element in root.iter("exec_depend")}
    assert {"rclpy", "std_msgs", "sensor_msgs", "geometry_msgs", "visualization_msgs", "vision_msgs",
            "diagnostic_msgs", "cv_bridge", "launch_ros", "rviz2"} <= depends
    assert "rosidl_runtime_py" not in depends  # no wheel of it exists: the node fills messages itself


def launch_arguments():
    tree = ast.parse((ROOT / "launch" / "spatial_query.launch.py").read_text())
    calls = [node for node in ast.walk(tree) if isinstance(node, ast.Call)
             and getattr(node.func, "id", None) == "DeclareLaunchArgument"]
    return {call.args[0].value: call for call in calls}, tree


def test_launch_file_arguments_match_the_node():
    arguments, tree = launch_arguments()
    assert {"model", "backend", "device", "camera", "image_topic", "depth_topic", "camera_info_topic", "rviz",
            "params_file", "rviz_config"} <= set(arguments)
    assert not any(keyword.arg == "default_value" for keyword in arguments["model"].keywords)  # required
    namespace = {}
    exec(compile(ast.Module([node for node in tree.body if isinstance(node, ast.Assign)], []), "launch", "exec"),
         namespace)
    parameters = {spec.name for spec in parameter_specs()}
    assert set(namespace["NODE_PARAMETERS"]) <= parameters and set(namespace["NODE_PARAMETERS"]) <= set(arguments)
    source = (ROOT / "launch" / "spatial_query.launch.py").read_text()
    assert 'executable="spatial_query_node"' in source and 'name="spatial_query_node"' in source


def test_parameter_file_sets_every_parameter_validly():
    data = yaml.safe_load((ROOT / "config" / "spatial_query.yaml").read_text())
    assert set(data["spatial_query_node"]["ros__parameters"]) == {spec.name for spec in parameter_specs()}
    config = SpatialQueryConfig.from_params_file(ROOT / "config" / "spatial_query.yaml", "spatial_query_node",
                                                 model="/models/sr-real")
    assert config.model == "/models/sr-real" and config == SpatialQueryConfig(model="/models/sr-real")


def test_rviz_config_shows_the_node_outputs():
    rviz = yaml.safe_load((ROOT / "config" / "sr_real.rviz").read_text())
    topics = {display["Class"]: display["Topic"]["Value"] for display in rviz["Visualization Manager"]["Displays"]
              if "Topic" in display}
    outputs = {endpoint.key: endpoint.topic.replace("~", "/spatial_query_node") for endpoint in OUTPUT_ENDPOINTS}
    assert topics["rviz_default_plugins/MarkerArray"] == outputs["markers"]
    assert topics["rviz_default_plugins/Image"] == outputs["debug_image"]
    publish_point, = (tool for tool in rviz["Visualization Manager"]["Tools"]
                      if tool["Class"] == "rviz_default_plugins/PublishPoint")
    assert publish_point["Topic"]["Value"] == SpatialQueryConfig().clicked_point_topic


def test_nothing_needs_ros_to_import_and_the_ros_transport_says_what_is_missing(capsys):
    probe = ("import sys, sr_real, sr_real_core.ros.cli, sr_real_core.ros.service, "
             "sr_real_core.ros.dds.transport; assert 'rclpy' not in sys.modules")
    assert subprocess.run([sys.executable, "-c", probe], capture_output=True, timeout=60).returncode == 0
    try:
        import rclpy  # noqa: F401
    except ImportError:
        assert main(["serve", "--transport", "ros", "--model", "/models/x"]) == 2
        assert "--transport ros needs ROS 2" in capsys.readouterr().err


def test_ros_env_fills_in_only_what_is_unset():
    environ = {"AMENT_PREFIX_PATH": "/opt/ros/kilted"}
    changes = ros_env.prepare(environ)
    assert environ["FASTDDS_DEFAULT_PROFILES_FILE"] == str(ros_env.INTEROP_PROFILE)
    if ros_env.wheel_prefix() is not None:  # ROS 2 from wheels in this venv: its prefix joins the ament index
        assert environ["AMENT_PREFIX_PATH"] == f"/opt/ros/kilted:{sys.prefix}"
    assert ros_env.prepare(environ) == {} and set(changes) <= {"AMENT_PREFIX_PATH", "FASTDDS_DEFAULT_PROFILES_FILE"}
    users = {"FASTDDS_DEFAULT_PROFILES_FILE": "/etc/mine.xml"}
    ros_env.prepare(users)
    assert users["FASTDDS_DEFAULT_PROFILES_FILE"] == "/etc/mine.xml"
    assert "FASTDDS_DEFAULT_PROFILES_FILE" not in ros_env.prepare({"RMW_IMPLEMENTATION": "rmw_cyclonedds_cpp"})


def test_the_interop_profile_disables_fast_dds_type_propagation():
    namespace = {"dds": "http://www.eprosima.com"}
    participant = ET.parse(ros_env.INTEROP_PROFILE).getroot().find("dds:profiles/dds:participant", namespace)
    assert participant.get("is_default_profile") == "true"
    properties = {prop.findtext("dds:name", namespaces=namespace): prop.findtext("dds:value", namespaces=namespace)
                  for prop in participant.iterfind(".//dds:property", namespace)}
    assert properties == {"fastdds.type_propagation": "disabled"}
