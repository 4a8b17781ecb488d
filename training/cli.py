"""`sr-real train {sft, rl, quickstart, ablations}`. Heavy imports stay inside the handlers."""
from __future__ import annotations

import argparse
import sys


def _fail(error: Exception) -> int:
    print(f"sr-real train: error: {error}", file=sys.stderr)
    return 2


def _cmd_stage(args: argparse.Namespace) -> int:
    from sr_real.training.config import ConfigError, load_config

    try:
        config = load_config(args.config, {"output_dir": args.output_dir} if args.output_dir else None)
        if config.stage != args.stage:
            raise ConfigError(f"{args.config}: stage: this is a {config.stage!r} config; use "
                              f"`sr-real train {config.stage}`")
    except ConfigError as error:
        return _fail(error)
    from sr_real.training.train import train

    print(train(config, args.max_steps))
    return 0


def _cmd_quickstart(args: argparse.Namespace) -> int:
    from sr_real.training.config import ConfigError
    from sr_real.training.quickstart import run_quickstart

    try:
        run_quickstart(args.out, args.recipe, args.max_steps)
    except ConfigError as error:
        return _fail(error)
    return 0


def _cmd_ablations(args: argparse.Namespace) -> int:
    from sr_real.training.ablations import run_ablations
    from sr_real.training.config import ConfigError

    try:
        run_ablations(args.out, args.quickstart, args.recipe, args.max_steps)
    except ConfigError as error:
        return _fail(error)
    return 0


def register(commands: argparse._SubParsersAction) -> None:
    from sr_real.training.quickstart import DEFAULT_RECIPE

    train = commands.add_parser("train", help="cold-start SFT, GRPO, the CPU quickstart and the ablations")
    actions = train.add_subparsers(dest="train_command", required=True, metavar="ACTION")
    for stage, description in (("sft", "cold-start SFT (TRL SFTTrainer)"), ("rl", "dual-path GRPO (TRL GRPOTrainer)")):
        command = actions.add_parser(stage, help=f"{description} from a run config; resumes after a kill")
        command.add_argument("--config", required=True, help="run config YAML, e.g. training/configs/tiny-sft.yaml")
        command.add_argument("--max-steps", type=int, default=None, help="override the config's step count")
        command.add_argument("--output-dir", default=None, help="override the config's output_dir")
        command.set_defaults(handler=_cmd_stage, stage=stage)

    quickstart = actions.add_parser("quickstart", help="the whole method on a CPU in minutes (make demo)")
    quickstart.add_argument("--out", default="runs/quickstart", help="output folder (default runs/quickstart)")
    quickstart.add_argument("--recipe", default=str(DEFAULT_RECIPE), help="quickstart recipe YAML")
    quickstart.add_argument("--max-steps", type=int, default=None, help="cap SFT and RL steps (smoke runs)")
    quickstart.set_defaults(handler=_cmd_quickstart)

    ablations = actions.add_parser("ablations",
                                   help="the paper's ablations at quickstart scale (not part of make demo)")
    ablations.add_argument("--out", default="runs/ablations", help="output folder (default runs/ablations)")
    ablations.add_argument("--quickstart", default="runs/quickstart",
                           help="a finished quickstart whose data, SFT and RL runs are the joint baseline")
    ablations.add_argument("--recipe", default=str(DEFAULT_RECIPE), help="quickstart recipe YAML")
    ablations.add_argument("--max-steps", type=int, default=None, help="cap SFT and RL steps (smoke runs)")
    ablations.set_defaults(handler=_cmd_ablations)
