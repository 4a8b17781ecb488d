"""`sr-real`: the project's one command line. Each subcommand is a thin wrapper over a library function.

Subsystems add their subcommands through a `register(commands)` function (listed in `_SUBSYSTEMS`), which
must import nothing heavy at module level so that `sr-real --help` stays instant.
"""
from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Sequence

# Modules exposing `register(commands: argparse._SubParsersAction) -> None`.
_SUBSYSTEMS: tuple[str, ...] = ("sr_real_core.model.cli", "sr_real_core.data.cli", "sr_real_core.evaluation.cli",
                               "sr_real_core.serve_cli", "training.cli", "export.cli")


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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
