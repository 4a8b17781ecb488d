"""`sr-real data from-bag`, `data labels`, `data robot-mixture`: the robot's own data into the data engine.

Heavy imports stay inside the handlers so that `sr-real --help` stays instant. A user error (an unreadable bag,
a missing topic, an occupied output folder) exits 2 with one line naming the input.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _cmd_from_bag(args: argparse.Namespace) -> int:
    from sr_real_core.data.from_bag import BagImportConfig, BagImportError, import_bag, summary
    from sr_real_core.ros.bag import BagError

    try:
        config = BagImportConfig(image_topic=args.image_topic, info_topic=args.info_topic,
                                 depth_topic=args.depth_topic, regions_topic=args.regions_topic,
                                 answers_topic=args.answers_topic, feedback_topic=args.feedback_topic,
                                 slop_s=args.slop, info_slop_s=args.info_slop, rate_hz=args.rate,
                                 min_change=args.min_change, max_frames=args.max_frames)
        report = import_bag(args.bag, args.out, config)
    except (BagImportError, BagError) as error:
        print(f"sr-real data from-bag: error: {error}", file=sys.stderr)
        return 2
    print(summary(report))
    return 0


def _cmd_labels(args: argparse.Namespace) -> int:
    from sr_real_core.data.labels import LabelError, convert_labels

    try:
        counts = convert_labels(args.dataset, args.out)
    except LabelError as error:
        print(f"sr-real data labels: error: {error}", file=sys.stderr)
        return 2
    print(json.dumps(counts))
    return 0


def _cmd_robot_mixture(args: argparse.Namespace) -> int:
    from sr_real_core.data.mixture import ConfigError
    from sr_real_core.data.replay import robot_mixture

    if not (Path(args.labels) / "scenes.jsonl").is_file():
        print(f"sr-real data robot-mixture: error: {args.labels}: no scenes.jsonl (run `sr-real data labels` first)",
              file=sys.stderr)
        return 2
    try:
        manifest = robot_mixture(args.labels, args.out, seed=args.seed, eval_fraction=args.eval_fraction,
                                 qa={"per_scene": args.per_scene})
    except ConfigError as error:
        print(f"sr-real data robot-mixture: error: {error}", file=sys.stderr)
        return 2
    data = json.loads(manifest.read_text())
    print(json.dumps({"counts": data["counts"], "labelled": data["labelled"]}))
    return 0


def register(steps: argparse._SubParsersAction) -> None:
    """Adds `from-bag`, `labels` and `robot-mixture` to `sr-real data`'s steps."""
    bag = steps.add_parser("from-bag", help="a recorded robot camera stream (rosbag2 mcap/sqlite3, ROS 1 bag) -> "
                                            "scene records with measured 3D objects")
    bag.add_argument("bag", help="rosbag2 folder or ROS 1 .bag file")
    bag.add_argument("--image-topic", required=True, help="sensor_msgs/Image, or CompressedImage (JPEG/PNG): the "
                                                          "topic itself or its base name before /compressed")
    bag.add_argument("--info-topic", required=True, help="sensor_msgs/CameraInfo of the colour image")
    bag.add_argument("--depth-topic", help="depth registered to the colour image (16UC1 mm or 32FC1 m); without "
                                           "it, 3D labels are unavailable")
    bag.add_argument("--regions-topic", help="vision_msgs/Detection2DArray: objects by box and class")
    bag.add_argument("--answers-topic", help="the node's ~/answer: recorded queries, their regions become objects")
    bag.add_argument("--feedback-topic", help="the node's ~/feedback: operator labels of recorded queries")
    bag.add_argument("--out", required=True, help="new dataset folder (written atomically)")
    bag.add_argument("--slop", type=float, default=0.05, help="largest colour/depth/detections stamp gap, s")
    bag.add_argument("--info-slop", type=float, default=None,
                     help="largest colour/camera_info stamp gap, s (default: any; calibration is static)")
    bag.add_argument("--rate", type=float, default=None, help="keep at most this many frames per second")
    bag.add_argument("--min-change", type=float, default=None,
                     help="keep a frame only when the camera moved: mean abs grey change of a 32x24 thumbnail "
                          "against the last kept frame, 0-255 (e.g. 4)")
    bag.add_argument("--max-frames", type=int, default=None, help="stop after this many frames")
    bag.set_defaults(handler=_cmd_from_bag)

    labels = steps.add_parser("labels", help="a robot dataset's queries with operator feedback -> labelled QA "
                                             "records; its frames -> scene records for `data qa` / `data build`")
    labels.add_argument("dataset", help="robot dataset folder (from-bag or the node's recorder)")
    labels.add_argument("--out", required=True, help="new output folder (written atomically)")
    labels.set_defaults(handler=_cmd_labels)

    mixture = steps.add_parser("robot-mixture", help="training records from `data labels` output: questions about "
                                                     "the measured objects plus the operator labels, split by scene")
    mixture.add_argument("labels", help="output folder of `sr-real data labels`")
    mixture.add_argument("--out", required=True, help="mixture folder (sft/rl train and eval, labelled_eval.jsonl)")
    mixture.add_argument("--eval-fraction", type=float, default=0.2, help="share of scenes held out (0.2)")
    mixture.add_argument("--per-scene", type=int, default=8, help="generated questions per scene (8)")
    mixture.add_argument("--seed", type=int, default=0)
    mixture.set_defaults(handler=_cmd_robot_mixture)
