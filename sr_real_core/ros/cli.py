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

from sr_real_core.errors import describe, one_line

ANSWER_TIMEOUT_S = 600.0  # per query in bag mode: generous for a large model on CPU
MAX_DOMAIN_ID = 232  # the largest domain whose DDS ports fit in 16 bits


def _domain_id(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer 0 to {MAX_DOMAIN_ID}, got {text!r}") from None
    if not 0 <= value <= MAX_DOMAIN_ID:
        raise argparse.ArgumentTypeError(f"{value} is outside 0 to {MAX_DOMAIN_ID} (DDS maps a domain to UDP ports "
                                         "7400 + 250 x domain + ...)")
    return value


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
        transport.spin(service.handlers(), service.diagnostics, stop, config.diagnostics_period_s,
                       on_error=lambda key, error: service.count_failure(key, describe(error)))
    finally:
        service.stop()
    return 0


def _run_bag(args: argparse.Namespace, config, engine) -> int:
    from sr_real_core.ros.bag import play_bag
    from sr_real_core.ros.service import SpatialQueryService

    answers: queue.Queue[str] = queue.Queue()
    answered = 0

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
            answer = answers.get(timeout=ANSWER_TIMEOUT_S)
            print(answer, flush=True)
            answered += json.loads(answer).get("status") == "ok"
    except queue.Empty:
        print(f"sr-real serve: error: no answer within {ANSWER_TIMEOUT_S:.0f} s", file=sys.stderr)
        return 1
    finally:
        service.stop()
    if not answered:
        print(f"sr-real serve: error: none of the {len(args.query)} queries was answered (see their messages)",
              file=sys.stderr)
        return 1
    return 0


def _check_bag_has_topics(connections: dict[str, str], args: argparse.Namespace) -> None:
    """A camera topic set with -p must be in the bag: another stream would be answered about silently."""
    for name, value in args.param:
        if name not in ("image_topic", "depth_topic", "camera_info_topic") or not value:
            continue
        topic = "/" + str(value).lstrip("/")
        if topic not in connections and not (name == "image_topic" and f"{topic}/compressed" in connections):
            listing = ", ".join(f"{t} ({kind})" for t, kind in sorted(connections.items())) or "none"
            raise ValueError(f"-p {name}={value}: no such topic in {args.bag}; its topics: {listing}")


def _cmd_serve(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.domain_id is None:
        try:
            args.domain_id = _domain_id(os.environ.get("ROS_DOMAIN_ID", "0") or "0")
        except argparse.ArgumentTypeError as error:
            raise ValueError(f"ROS_DOMAIN_ID: {error}") from None
    if args.loopback:
        from sr_real_core.ros.dds.transport import loopback_config

        os.environ["CYCLONEDDS_URI"] = loopback_config()  # read by Cyclone DDS, also under rmw_cyclonedds_cpp
    if bool(args.bag) != bool(args.query):
        args.parser.error("--bag and --query go together: --bag plays a recording, then answers each --query")
    if args.transport == "ros":
        return _run_ros(args)
    from sr_real_core.ros.bag import BagError, bag_connections, bag_topics
    from sr_real_core.ros.service import load_engine

    try:
        config = _config(args)
        if args.bag:  # before the model loads, so that a broken bag fails fast
            connections = bag_connections(args.bag)
            _check_bag_has_topics(connections, args)
            config = bag_topics(connections, config)
        engine = load_engine(config)
        return _run_bag(args, config, engine) if args.bag else _run_dds(args, config, engine)
    except (BagError, ValueError, OSError) as error:
        print(f"sr-real serve: error: {one_line(error)}", file=sys.stderr)
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
    serve.add_argument("--domain-id", type=_domain_id, default=None,
                       help=f"DDS domain, 0 to {MAX_DOMAIN_ID} (default: $ROS_DOMAIN_ID or 0)")
    serve.add_argument("--loopback", action="store_true",
                       help="keep DDS traffic on 127.0.0.1 (sets CYCLONEDDS_URI; with ROS, for rmw_cyclonedds_cpp)")
    serve.add_argument("--duration", type=float, default=0.0, help="with dds: stop after this many seconds (0: run "
                                                                    "until interrupted)")
    serve.add_argument("--bag", help="rosbag2 directory or ROS 1 bag: play its camera stream (no DDS, no ROS), "
                                     "then answer --query")
    serve.add_argument("--query", action="append", default=[],
                       help="with --bag: a query (text or JSON, as on ~/query) to answer on the bag's last frame")
    serve.set_defaults(handler=_cmd_serve, parser=serve)
