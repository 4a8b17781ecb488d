"""`sr-real model tiny` and `sr-real ask`. Heavy imports stay inside the handlers."""
from __future__ import annotations

import argparse
import json
import math
import re
import sys

from sr_real_core.errors import device_argument, one_line, positive_int
from sr_real_core.query import ANSWER_TYPES, BACKENDS, DEFAULT_PATH_MODE, MAX_NEW_TOKENS, PATH_MODES, Query, Region


def _cmd_tiny(args: argparse.Namespace) -> int:
    from sr_real_core.errors import check_output_dir
    from sr_real_core.model.tiny import write_tiny_model

    print(write_tiny_model(check_output_dir(args.out), seed=args.seed))
    return 0


# A box may start with a minus sign (`--region -50,10,90,120`): let argparse take such a word as a value.
_BOX_OR_NEGATIVE_NUMBER = re.compile(r"^-\d+$|^-\d*\.\d+$|^-?[\d.]+(,-?[\d.]*)*$")


def _box(text: str) -> Region:
    try:
        x1, y1, x2, y2 = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected x1,y1,x2,y2 in pixels, got {text!r}") from None
    if not all(math.isfinite(v) for v in (x1, y1, x2, y2)):
        raise argparse.ArgumentTypeError(f"expected four finite numbers x1,y1,x2,y2 in pixels, got {text!r}")
    return Region(box=(x1, y1, x2, y2))


def _cmd_ask(args: argparse.Namespace) -> int:
    from PIL import Image

    from sr_real_core.geometry import Intrinsics, load_depth
    from sr_real_core.inference import SpatialReasoner
    from sr_real_core.inputs import check_question

    if args.intrinsics and not (args.depth or args.depth_model):
        args.parser.error("--intrinsics needs --depth or --depth-model: without depth there is nothing to lift")
    check_question(args.question)  # before the model loads
    try:
        with Image.open(args.image) as opened:
            image = opened.convert("RGB")
        depth = load_depth(args.depth, args.depth_unit) if args.depth else None
        intrinsics = None
        if args.intrinsics:
            with open(args.intrinsics) as handle:
                intrinsics = Intrinsics.from_dict(json.load(handle))
        reasoner = SpatialReasoner.from_pretrained(args.model, backend=args.backend, device=args.device,
                                                   max_new_tokens=args.max_new_tokens, depth_model=args.depth_model,
                                                   constrain_answer=not args.free_answer)
        result = reasoner.answer(Query(args.question, [image], depths=[depth], intrinsics=[intrinsics],
                                       regions=args.region, path=args.path, answer_type=args.answer_type))
    except (OSError, ValueError) as error:
        print(f"sr-real ask: error: {one_line(error)}", file=sys.stderr)
        return 2
    print(json.dumps(result.to_dict()))
    return 0


def register(commands: argparse._SubParsersAction) -> None:
    model = commands.add_parser("model", help="model utilities")
    actions = model.add_subparsers(dest="model_command", required=True, metavar="ACTION")
    tiny = actions.add_parser("tiny", help="write a tiny random SR-REAL checkpoint (CPU tests, quickstart)")
    tiny.add_argument("--out", required=True, help="directory to write (model + processor)")
    tiny.add_argument("--seed", type=int, default=0, help="weight seed; same seed, same checkpoint")
    tiny.set_defaults(handler=_cmd_tiny)

    ask = commands.add_parser("ask", help="answer a spatial question about an image; prints one JSON object")
    ask.add_argument("question", help="the question; the i-th --region is referred to by the i-th <region>, "
                                      "e.g. 'How tall is the chair (red bbox) <region>?'")
    ask.add_argument("--model", required=True, help="checkpoint directory (SR-REAL or Qwen2.5-VL)")
    ask.add_argument("--image", required=True, help="RGB image file")
    ask.add_argument("--depth", help="depth map aligned with the image (.npy metres, or 16-bit PNG / float TIFF)")
    ask.add_argument("--depth-unit", type=float, help="metres per stored depth unit (default: 0.001 for PNG, "
                                                      "1 for .npy)")
    ask.add_argument("--intrinsics", help="JSON file {fx, fy, cx, cy, width, height}; without it depth is "
                                          "treated as relative (pseudo-3D)")
    ask.add_argument("--depth-model", help="local depth-estimation checkpoint, used when --depth is not given")
    ask.add_argument("--region", action="append", type=_box, default=[], metavar="X1,Y1,X2,Y2",
                     help="a box in image pixels; repeat for several regions")
    ask.add_argument("--path", choices=PATH_MODES, default=DEFAULT_PATH_MODE,
                     help="reasoning path to ask for; reference: DTR with regions, LOR without (default)")
    ask.add_argument("--answer-type", choices=ANSWER_TYPES, help="expected answer type, if known")
    ask.add_argument("--backend", choices=BACKENDS, help="inference backend; default: onnxruntime/tensorrt as a "
                                                         "deploy folder's manifest says, torch for a checkpoint")
    ask.add_argument("--device", type=device_argument, help="torch device, e.g. cuda (default: cpu)")
    ask.add_argument("--max-new-tokens", type=positive_int, default=MAX_NEW_TOKENS,
                     help=f"most tokens generated for the answer (default {MAX_NEW_TOKENS})")
    ask.add_argument("--free-answer", action="store_true", help="decode the answer freely (default: with "
                     "--answer-type, only an answer of that type)")
    ask.set_defaults(handler=_cmd_ask, parser=ask)
    ask._negative_number_matcher = _BOX_OR_NEGATIVE_NUMBER
