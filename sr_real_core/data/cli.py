"""`sr-real data {synth, qa, build}`: synthetic scenes, spatial questions, training mixtures.

Heavy imports (pybullet, datasets) stay inside the handlers so that `sr-real --help` stays instant.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from sr_real_core.errors import check_output_dir, positive_int, staged_output


def _size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT, e.g. 320x240, got {text!r}") from None
    if width < 1 or height < 1:
        raise argparse.ArgumentTypeError(f"expected a positive WIDTHxHEIGHT, e.g. 320x240, got {text!r}")
    return width, height


def _cmd_synth(args: argparse.Namespace) -> int:
    from sr_real_core.data.synth import SynthConfig, synthesize

    width, height = args.size
    config = SynthConfig(num_scenes=args.num_scenes, seed=args.seed, width=width, height=height,
                         room_fraction=args.room_fraction, workers=args.workers)
    with staged_output(check_output_dir(args.out), folder=True) as out:
        written = synthesize(config, out)
    print(Path(args.out) / written.relative_to(out))
    return 0


def _cmd_qa(args: argparse.Namespace) -> int:
    from sr_real_core.data.qa import QAConfig, generate_qa
    from sr_real_core.data.rewrite import CoTRewriter, RewriteConfig

    if (args.rewrite_endpoint is None) != (args.rewrite_model is None):
        raise SystemExit("sr-real data qa: --rewrite-endpoint and --rewrite-model go together")
    config = QAConfig(seed=args.seed, per_scene=args.per_scene, region_fraction=args.region_fraction,
                      write_marked=not args.no_marked)
    rewriter = CoTRewriter(RewriteConfig(args.rewrite_endpoint, args.rewrite_model)) if args.rewrite_endpoint else None
    with staged_output(check_output_dir(args.out), folder=True) as out:
        written = generate_qa(args.scenes, out, config, rewriter=rewriter)
    print(Path(args.out) / written.relative_to(out))
    return 0


def _cmd_build(args: argparse.Namespace) -> int:
    from sr_real_core.data.mixture import ConfigError, MixtureConfig, build_mixture

    try:
        manifest = build_mixture(MixtureConfig.from_yaml(args.config))
    except ConfigError as error:
        print(f"sr-real data build: {args.config}: {error}", file=sys.stderr)
        return 2
    print(json.dumps(json.loads(manifest.read_text())["counts"]))
    return 0


def register(commands: argparse._SubParsersAction) -> None:
    data = commands.add_parser("data", help="synthetic scenes, spatial QA with chains of thought, training mixtures")
    steps = data.add_subparsers(dest="data_command", required=True, metavar="STEP")

    synth = steps.add_parser("synth", help="render synthetic RGB-D scenes with pybullet (scenes file + images)")
    synth.add_argument("--num-scenes", type=positive_int, required=True, help="scenes to render")
    synth.add_argument("--out", required=True, help="output directory")
    synth.add_argument("--seed", type=int, default=0, help="layout and camera seed; same seed, same scenes")
    synth.add_argument("--size", type=_size, default=(320, 240), help="image size WIDTHxHEIGHT (default 320x240)")
    synth.add_argument("--room-fraction", type=float, default=0.3, help="share of room scenes (rest: table-tops)")
    synth.add_argument("--workers", type=positive_int, default=1, help="parallel render processes")
    synth.set_defaults(handler=_cmd_synth)

    qa = steps.add_parser("qa", help="spatial questions, answers and chains of thought from a scenes file")
    qa.add_argument("scenes", help="scenes file (JSON Lines) with 3D object annotations")
    qa.add_argument("--out", required=True, help="output directory (qa.jsonl, marked/, qa_stats.json)")
    qa.add_argument("--seed", type=int, default=0, help="question sampling seed; same seed, same questions")
    qa.add_argument("--per-scene", type=positive_int, default=10, help="questions per scene (at most)")
    qa.add_argument("--region-fraction", type=float, default=0.6, help="share of questions using region marks")
    qa.add_argument("--no-marked", action="store_true", help="do not write marked images")
    qa.add_argument("--rewrite-endpoint", default=None, help="OpenAI-compatible API base URL to rewrite the CoTs")
    qa.add_argument("--rewrite-model", default=None, help="model name for --rewrite-endpoint")
    qa.set_defaults(handler=_cmd_qa)

    build = steps.add_parser("build", help="assemble SFT and RL training records from a YAML mixture config")
    build.add_argument("--config", required=True,
                       help="mixture config, e.g. training/configs/data-tiny.yaml (its relative paths are read "
                            "from the current folder; its scenes must be rendered first with `data synth`)")
    build.set_defaults(handler=_cmd_build)

    from sr_real_core.data import robot_cli

    robot_cli.register(steps)  # from-bag, labels: the robot's own data
