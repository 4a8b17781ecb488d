"""Spatial questions about an RGB-D camera, answered in RViz.

    ros2 launch sr_real spatial_query.launch.py model:=/path/to/checkpoint
    ros2 launch sr_real spatial_query.launch.py model:=/path/to/checkpoint camera:=/d435 rviz:=false
    ros2 launch sr_real spatial_query.launch.py model:=/path/to/checkpoint image_transport:=compressed \
        depth_topic:=''

Then ask:  ros2 topic pub --once /spatial_query_node/query std_msgs/msg/String "{data: 'How far is the chair?'}"
and read:  ros2 topic echo /spatial_query_node/answer
The camera topics default to the realsense2_camera layout under the `camera` namespace; every parameter not
set here comes from `params_file` (config/spatial_query.yaml).
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue
from launch_ros.substitutions import FindPackageShare

try:  # the node's defaults and choices come from its config class
    from sr_real_core.ros.config import parameter_specs
except ImportError:  # only launch_ros here (e.g. listing the arguments): the parameter file sets the values
    parameter_specs = list

# Launch arguments passed to the node as string parameters of the same name.
NODE_PARAMETERS = ("model", "backend", "device", "path_mode", "image_topic", "image_transport", "depth_topic",
                   "camera_info_topic", "detections_topic")


def node_parameter(name: str) -> dict:
    """`default_value` and `choices` of a node parameter, as `SpatialQueryConfig` declares them."""
    spec = next((spec for spec in parameter_specs() if spec.name == name), None)
    if spec is None:
        return {"default_value": ""}
    return {"default_value": str(spec.default), **({"choices": list(spec.choices)} if spec.choices else {})}


def generate_launch_description() -> LaunchDescription:
    share = FindPackageShare("sr_real")
    camera = LaunchConfiguration("camera")
    arguments = [
        DeclareLaunchArgument("model", description="SR-REAL checkpoint directory (required)"),
        DeclareLaunchArgument("backend", **node_parameter("backend"), description="inference backend"),
        DeclareLaunchArgument("device", **node_parameter("device"),
                              description="backend device, e.g. cuda; empty: default"),
        DeclareLaunchArgument("path_mode", **node_parameter("path_mode"),
                              description="reasoning path for queries that name none"),
        DeclareLaunchArgument("camera", default_value="/camera", description="namespace of the camera driver"),
        DeclareLaunchArgument("image_topic", default_value=[camera, "/color/image_raw"],
                              description="colour image topic"),
        DeclareLaunchArgument("image_transport", **node_parameter("image_transport"),
                              description="compressed: subscribe to image_topic/compressed (JPEG/PNG)"),
        DeclareLaunchArgument("depth_topic", default_value=[camera, "/aligned_depth_to_color/image_raw"],
                              description="depth registered to the colour image; empty: no depth"),
        DeclareLaunchArgument("camera_info_topic", default_value=[camera, "/color/camera_info"],
                              description="CameraInfo of the colour image"),
        DeclareLaunchArgument("detections_topic", **node_parameter("detections_topic"),
                              description="vision_msgs/Detection2DArray of a 2D detector; empty: off"),
        DeclareLaunchArgument("params_file", default_value=PathJoinSubstitution([share, "config",
                                                                                 "spatial_query.yaml"]),
                              description="parameter file of the node"),
        DeclareLaunchArgument("rviz", default_value="true", choices=["true", "false"],
                              description="start RViz with the markers and the debug image"),
        DeclareLaunchArgument("rviz_config", default_value=PathJoinSubstitution([share, "config", "sr_real.rviz"]),
                              description="RViz configuration"),
    ]
    overrides = {name: ParameterValue(LaunchConfiguration(name), value_type=str) for name in NODE_PARAMETERS}
    node = Node(package="sr_real", executable="spatial_query_node", name="spatial_query_node", output="screen",
                emulate_tty=True, parameters=[LaunchConfiguration("params_file"), overrides])
    rviz = Node(package="rviz2", executable="rviz2", name="rviz2", output="screen",
                arguments=["-d", LaunchConfiguration("rviz_config")],
                condition=IfCondition(LaunchConfiguration("rviz")))
    return LaunchDescription([*arguments, node, rviz])
