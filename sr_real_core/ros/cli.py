"""`sr-real serve`: the spatial query node, on ROS 2 (rclpy), on raw DDS without ROS, or over a recorded bag.

    sr-real serve --model DIR                                   # DDS, domain $ROS_DOMAIN_ID (default 0)
    sr-real serve --model DIR --transport ros                   # the rclpy node (a sourced ROS 2 or `make ros`)
    sr-real serve --model DIR --bag BAG --query "How far ...?"  # offline: play a bag, print the answers

Parameters are those of `config/spatial_query.yaml` (`--params-file`, `-p name=value`). Heavy imports stay
inside the handler so that `sr-real --help` stays instant.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import queue
import signal
import sys
import threading
from typing import Any

ANSWER_TIMEOUT_S = 600.0  # per query in bag mode: generous for a large model on CPU


def _parameter(text: str) -> tuple[str, Any]:
    import yaml

    name, separator, value = text.partition("=")
    if not separator or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name.strip(), yaml.safe_load(value)  # typed as in a ROS parameter file: 0.1, 5, true, text


def _config(args: argparse.Namespace):
    from sr_real_core.ros.config import SpatialQueryConfig

    overrides = dict(args.param)
    if args.model:
        overrides["model"] = args.model
    if args.params_file:
        return SpatialQueryConfig.from_params_file(args.params_file, args.node_name, **overrides)
    return SpatialQueryConfig.from_mapping(overrides)


def _run_ros(args: argparse.Namespace) -> int:
    """The rclpy node, started by `args.run_ros(args, ros_args)` (set by the `sr-real` entry point, `sr_real.cli`:
    the core imports no rclpy)."""
    os.environ["ROS_DOMAIN_ID"] = str(args.domain_id)
    ros_args = ["--ros-args", "-r", f"__node:={args.node_name}", "-r", f"__ns:={args.namespace}"]
    if args.params_file:
        ros_args += ["--params-file", args.params_file]
    for name, value in [*args.param, *([("model", args.model)] if args.model else [])]:
        ros_args += ["-p", f"{name}:={json.dumps(value) if isinstance(value, str) else value}"]
    run_ros = getattr(args, "run_ros", None)
    if run_ros is None:
        print("sr-real serve: --transport ros needs the sr_real package's entry point (sr-real)", file=sys.stderr)
        return 2
    return run_ros(args, ros_args)


def _run_dds(args: argparse.Namespace, config, engine) -> int:
    from sr_real_core.ros.dds.transport import DdsTransport, dds_topic
    from sr_real_core.ros.service import SpatialQueryService

    transport = DdsTransport(config, domain_id=args.domain_id, namespace=args.namespace, node_name=args.node_name)
    service = SpatialQueryService(engine, config, transport.publish)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    if args.duration:
        timer = threading.Timer(args.duration, stop.set)
        timer.daemon = True
        timer.start()
    service.start()
    logging.info("ready on DDS domain %d: ask on %s", args.domain_id,
                 dds_topic("~/query", args.namespace, args.node_name))
    try:
        transport.spin(service.handlers(), service.diagnostics, stop, config.diagnostics_period_s)
    finally:
        service.stop()
    return 0


def _run_bag(args: argparse.Namespace, config, engine) -> int:
    from sr_real_core.ros.bag import play_bag
    from sr_real_core.ros.service import SpatialQueryService

    answers: queue.Queue[str] = queue.Queue()

    def publish(key: str, message: Any) -> None:
        if key == "answer":
            answers.put(message["data"])

    service = SpatialQueryService(engine, config, publish)
    service.start()
    try:
        delivered = play_bag(args.bag, service)
        logging.info("played %d messages of %s: %s", delivered, args.bag, service.frame_counts())
        for question in args.query:
            service.on_query(question)
            print(answers.get(timeout=ANSWER_TIMEOUT_S), flush=True)
    except queue.Empty:
        print(f"sr-real serve: error: no answer within {ANSWER_TIMEOUT_S:.0f} s", file=sys.stderr)
        return 1
    finally:
        service.stop()
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.loopback:
        from sr_real_core.ros.dds.transport import loopback_config

        os.environ["CYCLONEDDS_URI"] = loopback_config()  # read by Cyclone DDS, also under rmw_cyclonedds_cpp
    if args.transport == "ros":
        return _run_ros(args)
    from sr_real_core.ros.bag import BagError, bag_connections, bag_topics
    from sr_real_core.ros.service import load_engine

    try:
        config = _config(args)
        if args.bag:  # before the model loads, so that a broken bag fails fast
            config = bag_topics(bag_connections(args.bag), config)
        engine = load_engine(config)
        return _run_bag(args, config, engine) if args.bag else _run_dds(args, config, engine)
    except (BagError, ValueError, OSError) as error:
        print(f"sr-real serve: error: {error}", file=sys.stderr)
        return 2


def register(commands: argparse._SubParsersAction) -> None:
    serve = commands.add_parser("serve", help="run the spatial query node (ROS 2, raw DDS, or over a bag)")
    serve.add_argument("--model", help="checkpoint directory (the 'model' parameter)")
    serve.add_argument("--transport", choices=("dds", "ros"), default="dds",
                       help="dds: Cyclone DDS, the ROS 2 wire protocol without ROS (default); ros: the rclpy node")
    serve.add_argument("--params-file", help="ROS 2 parameter file, e.g. config/spatial_query.yaml")
    serve.add_argument("-p", "--param", action="append", type=_parameter, default=[], metavar="NAME=VALUE",
                       help="set a parameter, e.g. -p depth_topic=/camera/depth/image_rect_raw (repeatable)")
    serve.add_argument("--node-name", default="spatial_query_node", help="node name (its ~/ topics)")
    serve.add_argument("--namespace", default="/", help="node namespace")
    serve.add_argument("--domain-id", type=int, default=int(os.environ.get("ROS_DOMAIN_ID", "0")),
                       help="DDS domain (default: $ROS_DOMAIN_ID or 0)")
    serve.add_argument("--loopback", action="store_true",
                       help="keep DDS traffic on 127.0.0.1 (sets CYCLONEDDS_URI; with ROS, for rmw_cyclonedds_cpp)")
    serve.add_argument("--duration", type=float, default=0.0, help="with dds: stop after this many seconds (0: run "
                                                                    "until interrupted)")
    serve.add_argument("--bag", help="rosbag2 directory or ROS 1 bag: play its camera stream (no DDS, no ROS), "
                                     "then answer --query")
    serve.add_argument("--query", action="append", default=[],
                       help="with --bag: a query (text or JSON, as on ~/query) to answer on the bag's last frame")
    serve.set_defaults(handler=_cmd_serve)
