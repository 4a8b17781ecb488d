"""A synthetic robot recording: rendered RGB-D scenes as a rosbag2 bag, with the node's answer to one query per
frame and operator feedback on some of them (what a robot running the node with a detector would record)."""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np

from sr_real_core.ros.bag_writer import CameraTopics, scene_frames, write_camera_bag

TOPICS = CameraTopics()
ANSWERS, FEEDBACK = "/spatial_query_node/answer", "/spatial_query_node/feedback"
IMPORT_ARGS = ["--image-topic", TOPICS.image, "--info-topic", TOPICS.info, "--depth-topic", TOPICS.depth,
               "--regions-topic", TOPICS.detections, "--answers-topic", ANSWERS, "--feedback-topic", FEEDBACK]


def distance_answer(scene, stamp: float, index: int) -> dict:
    """The node's ~/answer to "how far is <object> from the camera" on a frame, the model saying 1 m."""
    obj = scene.objects[0]
    return {"status": "ok", "id": f"q{index}", "question": "How far is the object (red bbox) <region> from the "
            "camera?", "answer": "1 m", "path": "dtr", "value_m": 1.0, "answer_type": "numeric",
            "regions": [{"ref": "red bbox", "box": obj.bbox_2d}],
            "detections": [{"name": obj.name, "ref": "red bbox", "center_3d": [0.0, 0.0, 1.0]}],
            "frame_stamp": stamp}


def truth_m(scene) -> float:
    return float(np.linalg.norm(scene.objects[0].center_3d))


def write_robot_bag(scenes, path: Path, storage: str = "mcap", depth_offset_s: float = 0.0) -> Path:
    """Every scene as a frame with a query answered on it. Feedback: frames 0 mod 2 the operator's answer (the true
    distance), 1 mod 4 "correct", 3 mod 4 none."""
    frames = [replace(frame, depth_stamp=frame.stamp + depth_offset_s) for frame in scene_frames(scenes)]
    strings = []
    for index, (scene, frame) in enumerate(zip(scenes, frames)):
        strings.append((ANSWERS, frame.stamp + 0.05, json.dumps(distance_answer(scene, frame.stamp, index))))
        if index % 2 == 0:
            feedback = {"id": f"q{index}", "answer": f"{truth_m(scene):.2f} m"}
        elif index % 4 == 1:
            feedback = {"id": f"q{index}", "verdict": "correct"}
        else:
            continue
        strings.append((FEEDBACK, frame.stamp + 0.06, json.dumps(feedback)))
    return write_camera_bag(path, frames, strings=strings, storage=storage)
