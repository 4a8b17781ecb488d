"""`sr-real export onnx | quantize | check | tensorrt`. Heavy imports stay inside the handlers."""
from __future__ import annotations

import argparse
import json
import sys


def _fail(command: str, error: Exception) -> int:
    print(f"sr-real export {command}: error: {str(error).splitlines()[0]}", file=sys.stderr)
    return 2


def _cmd_onnx(args: argparse.Namespace) -> int:
    from .onnx_export import export_checkpoint

    try:
        print(export_checkpoint(args.model, args.out, opset=args.opset, precision=args.precision, base=args.base))
    except (OSError, ValueError) as error:
        return _fail("onnx", error)
    return 0


def _cmd_quantize(args: argparse.Namespace) -> int:
    from .variants import quantize_folder

    try:
        print(quantize_folder(args.deploy_dir, args.out))
    except (OSError, ValueError) as error:
        return _fail("quantize", error)
    return 0


def _cmd_check(args: argparse.Namespace) -> int:
    from .check import example_query, run_checks

    try:
        query = None
        if args.image:
            regions = [{"box": box} for box in args.region]
            query = example_query(args.image, args.depth, args.intrinsics, regions, args.question)
        findings = run_checks(args.deploy_dir, fp16=args.fp16, query=query)
    except (OSError, ValueError) as error:
        return _fail("check", error)
    for finding in findings:
        print(json.dumps(finding.__dict__) if args.json else finding.line())
    return 1 if any(f.status == "fail" for f in findings) else 0


def _cmd_tensorrt(args: argparse.Namespace) -> int:
    from .tensorrt_build import BuildSettings, MissingRequirement, build_engines

    settings = BuildSettings(max_batch=args.max_batch, max_sequence=args.max_sequence,
                             max_image_tokens=args.max_image_tokens, workspace_gib=args.workspace_gib)
    try:
        print(build_engines(args.deploy_dir, settings))
    except (MissingRequirement, OSError, ValueError) as error:
        return _fail("tensorrt", error)
    return 0


def _box(text: str) -> list[float]:
    try:
        x1, y1, x2, y2 = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected x1,y1,x2,y2 in pixels, got {text!r}") from None
    return [x1, y1, x2, y2]


def register(commands: argparse._SubParsersAction) -> None:
    export = commands.add_parser("export", help="deploy folders for robots: ONNX export, CPU pre-flight, TensorRT")
    actions = export.add_subparsers(dest="export_command", required=True, metavar="ACTION")

    onnx = actions.add_parser("onnx", help="export a checkpoint (LoRA merged) to a deploy folder of ONNX graphs")
    onnx.add_argument("--model", required=True, help="SR-REAL or Qwen2.5-VL checkpoint directory (safetensors), or a LoRA adapter folder")
    onnx.add_argument("--base", help="with a LoRA adapter folder as --model: the checkpoint it was trained on")
    onnx.add_argument("--out", required=True, help="deploy folder to create (must not exist)")
    onnx.add_argument("--precision", choices=("fp32", "fp16"), default="fp32",
                      help="fp16: half-precision graphs (norms, softmax, rotary angles stay FP32), for TensorRT")
    onnx.add_argument("--opset", type=int, default=18, help="ONNX opset (default 18)")
    onnx.set_defaults(handler=_cmd_onnx)

    quantize = actions.add_parser("quantize", help="INT8 decoder variant of an FP32 deploy folder (ONNX Runtime, CPU)")
    quantize.add_argument("deploy_dir", help="FP32 deploy folder")
    quantize.add_argument("--out", required=True, help="deploy folder to create (must not exist)")
    quantize.set_defaults(handler=_cmd_quantize)

    check = actions.add_parser("check", help="CPU pre-flight of a deploy folder (exit 1 if a check fails)")
    check.add_argument("deploy_dir", help="FP32 deploy folder")
    check.add_argument("--fp16", help="FP16 deploy folder of the same checkpoint: compare answers and centres")
    check.add_argument("--image", help="RGB image for the run-time checks (default: the bundled tabletop frame)")
    check.add_argument("--depth", help="depth map aligned with --image")
    check.add_argument("--intrinsics", help="JSON {fx, fy, cx, cy, width, height} for --depth")
    check.add_argument("--region", action="append", type=_box, default=[], metavar="X1,Y1,X2,Y2")
    check.add_argument("--question", help="question with one <region> per --region")
    check.add_argument("--json", action="store_true", help="one JSON object per finding")
    check.set_defaults(handler=_cmd_check)

    tensorrt = actions.add_parser("tensorrt", help="build TensorRT engines into DEPLOY_DIR/engines (on the target)")
    tensorrt.add_argument("deploy_dir", help="deploy folder (FP16 export recommended)")
    tensorrt.add_argument("--max-batch", type=int, default=1)
    tensorrt.add_argument("--max-sequence", type=int, default=2048, help="prompt + generated tokens")
    tensorrt.add_argument("--max-image-tokens", type=int, default=1280, help="merged image tokens per batch")
    tensorrt.add_argument("--workspace-gib", type=float, default=4.0)
    tensorrt.set_defaults(handler=_cmd_tensorrt)
