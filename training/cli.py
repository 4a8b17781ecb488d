"""`sr-real train {sft, rl, quickstart, pretrain, ablations, compare}`. Heavy imports stay inside the handlers."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _fail(error: Exception) -> int:
    print(f"sr-real train: error: {error}", file=sys.stderr)
    return 2


def _cmd_stage(args: argparse.Namespace) -> int:
    from sr_real.training.config import ConfigError
    from sr_real.training.continual import continue_config

    try:
        overrides = {key: value for key, value in (("output_dir", args.output_dir),
                                                   ("data", {"mixture": args.mixture} if args.mixture else None)) if value}
        config = continue_config(args.config, overrides, args.init_from, args.replay, args.replay_share)
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


def _cmd_pretrain(args: argparse.Namespace) -> int:
    import dataclasses

    from sr_real.training.config import ConfigError
    from sr_real.training.continual import checked_checkpoint
    from sr_real.training.pretrain import PretrainSettings, pretrain_readout

    try:
        checked_checkpoint(args.model, "--model")
        if args.steps < 1:
            raise ConfigError(f"--steps: expected a positive number of steps, got {args.steps}")
    except ConfigError as error:
        return _fail(error)
    figures = pretrain_readout(args.model, args.out, dataclasses.replace(PretrainSettings(), steps=args.steps),
                            seed=args.seed)
    before, after = (f"{value:.2f} m" if value is not None else "no boxes" for value in
                     (figures["readout_error_before"], figures["readout_error_after"]))
    print(f"median read-out error {before} -> {after}: {args.out}")
    return 0


def _cmd_ablations(args: argparse.Namespace) -> int:
    from sr_real.training.ablations import run_ablations
    from sr_real.training.config import ConfigError

    try:
        run_ablations(args.out, args.quickstart, args.recipe, args.max_steps)
    except ConfigError as error:
        return _fail(error)
    return 0


def _cmd_compare(args: argparse.Namespace) -> int:
    from sr_real.training.config import ConfigError
    from sr_real.training.continual import checked_checkpoint, compare_checkpoints, summary

    try:
        for checkpoint in (args.before, args.after):
            checked_checkpoint(checkpoint)
        for qa in (args.robot_qa, args.original_qa):
            if not Path(qa).is_file():
                raise ConfigError(f"{qa}: no such QA file")
        loss_sets = {name: file for name, file in (("robot", args.robot_sft), ("original", args.original_sft)) if file}
        for file in loss_sets.values():
            if not Path(file).is_file():
                raise ConfigError(f"{file}: no such SFT records file")
    except ConfigError as error:
        return _fail(error)
    result = compare_checkpoints(args.before, args.after, {"robot": args.robot_qa, "original": args.original_qa},
                                 args.out, path=args.path, margin=args.margin, max_new_tokens=args.max_new_tokens,
                                 loss_sets=loss_sets, loss_margin=args.loss_margin, loss_records=args.loss_records,
                                 constrain_answer=not args.free_answer)
    print(summary(result))
    return 0


def register(commands: argparse._SubParsersAction) -> None:
    from sr_real.training.continual import FORGETTING_MARGIN, LOSS_MARGIN, LOSS_RECORDS
    from sr_real.training.quickstart import DEFAULT_RECIPE

    train = commands.add_parser("train", help="cold-start SFT, GRPO, the CPU quickstart and the ablations")
    actions = train.add_subparsers(dest="train_command", required=True, metavar="ACTION")
    for stage, description in (("sft", "cold-start SFT (TRL SFTTrainer)"), ("rl", "dual-path GRPO (TRL GRPOTrainer)")):
        command = actions.add_parser(stage, help=f"{description} from a run config; resumes after a kill")
        command.add_argument("--config", required=True, help="run config YAML, e.g. training/configs/tiny-sft.yaml")
        command.add_argument("--max-steps", type=int, default=None, help="override the config's step count")
        command.add_argument("--output-dir", default=None, help="override the config's output_dir")
        command.add_argument("--mixture", default=None, help="override the config's data.mixture")
        command.add_argument("--init-from", default=None, help="continue training from this checkpoint (replaces "
                                                               "model.path), e.g. on robot data")
        command.add_argument("--replay", default=None, help="an original mixture folder to replay a share of (keeps "
                                                            "old skills while training on the config's mixture)")
        command.add_argument("--replay-share", type=float, default=0.3, help="share of replayed records (0.3)")
        command.set_defaults(handler=_cmd_stage, stage=stage)

    quickstart = actions.add_parser("quickstart", help="the whole method on a CPU in minutes (make demo)")
    quickstart.add_argument("--out", default="runs/quickstart", help="output folder (default runs/quickstart)")
    quickstart.add_argument("--recipe", default=str(DEFAULT_RECIPE), help="quickstart recipe YAML")
    quickstart.add_argument("--max-steps", type=int, default=None, help="cap SFT and RL steps (smoke runs)")
    quickstart.set_defaults(handler=_cmd_quickstart)

    pretrain = actions.add_parser("pretrain", help="read-out pretraining of a random-init model before SFT (made-up "
                                                   "region evidence -> written centres; the quickstart's pretrain stage)")
    pretrain.add_argument("--model", required=True, help="checkpoint to start from, e.g. runs/quickstart/tiny-model")
    pretrain.add_argument("--out", required=True, help="output checkpoint folder (+ pretrain.json)")
    pretrain.add_argument("--steps", type=int, default=600, help="optimizer steps of 32 sequences (600)")
    pretrain.add_argument("--seed", type=int, default=0)
    pretrain.set_defaults(handler=_cmd_pretrain)

    ablations = actions.add_parser("ablations",
                                   help="the paper's ablations at quickstart scale (not part of make demo)")
    ablations.add_argument("--out", default="runs/ablations", help="output folder (default runs/ablations)")
    ablations.add_argument("--quickstart", default="runs/quickstart",
                           help="a finished quickstart whose data, SFT and RL runs are the joint baseline")
    ablations.add_argument("--recipe", default=str(DEFAULT_RECIPE), help="quickstart recipe YAML")
    ablations.add_argument("--max-steps", type=int, default=None, help="cap SFT and RL steps (smoke runs)")
    ablations.set_defaults(handler=_cmd_ablations)

    compare = actions.add_parser("compare", help="a continued checkpoint against its start: gain on held-out robot "
                                                 "scenes, forgetting on the original held-out set")
    compare.add_argument("--before", required=True, help="the starting checkpoint")
    compare.add_argument("--after", required=True, help="the continued checkpoint")
    compare.add_argument("--robot-qa", required=True, help="held-out robot questions (QA records)")
    compare.add_argument("--original-qa", required=True, help="the original held-out questions (QA records)")
    compare.add_argument("--out", required=True, help="output folder (compare.json, evaluations)")
    compare.add_argument("--path", default="auto", choices=("lor", "dtr", "auto"), help="path mode asked for")
    compare.add_argument("--margin", type=float, default=FORGETTING_MARGIN,
                         help=f"accuracy loss on the original set that counts as forgetting ({FORGETTING_MARGIN})")
    compare.add_argument("--max-new-tokens", type=int, default=384)
    compare.add_argument("--robot-sft", help="held-out robot SFT records (the answer loss), e.g. the mixture's "
                                             "sft_eval.jsonl")
    compare.add_argument("--original-sft", help="the original held-out SFT records (the answer loss)")
    compare.add_argument("--loss-margin", type=float, default=LOSS_MARGIN,
                         help=f"rise of the original answer loss (nats/token, upper end of its 95%% interval) that "
                              f"counts as forgetting ({LOSS_MARGIN})")
    compare.add_argument("--loss-records", type=int, default=LOSS_RECORDS,
                         help=f"held-out SFT records scored per set (a seeded draw; default {LOSS_RECORDS})")
    compare.add_argument("--free-answer", action="store_true",
                         help="decode answers freely (default: constrained to the form of the question's type)")
    compare.set_defaults(handler=_cmd_compare)
