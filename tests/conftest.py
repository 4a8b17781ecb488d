"""The ROS 2 environment of the test session, set before any test module imports rclpy: discovery on this
host only, a DDS domain of this run's own (other runs on the machine stay apart), the wheels' ament prefix and
the Fast DDS profile that lets rclpy and Cyclone DDS talk (sr_real.ros_env). Child processes inherit it."""
import os

from sr_real import ros_env

ROS_DOMAIN_ID = 100 + (os.getpid() * 7) % 120  # test_ros_dds's own domains use offsets 1 and 2 from this
os.environ["ROS_DOMAIN_ID"] = str(ROS_DOMAIN_ID)
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
os.environ.setdefault("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp")
ros_env.prepare()
