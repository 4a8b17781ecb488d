"""The ROS 2 wire protocol without ROS, on the Cyclone DDS Python binding (`cyclonedds`).

- idl        ROS message types as IDL structs built from the rosbags type store, uint8[] fields carried as
             bytes (a 640x480 image in a fraction of a millisecond); dicts -> messages.
- transport  `DdsTransport`: the spatial query service on DDS topics (`sr-real serve --transport dds`);
             `loopback_config()`: a CycloneDDS configuration that keeps all traffic on 127.0.0.1.

The other side (a camera and a questioner, `DdsNodeClient`) is a test double in tests/support/dds_client.py.
"""
