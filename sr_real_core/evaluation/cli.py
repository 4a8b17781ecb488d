"""`sr-real eval`: score a model or predictions; `sr-real eval import`; `sr-real eval compare`.

    sr-real eval --qa QA.jsonl (--model DIR | --predictions PRED.jsonl) --out DIR [--path lor|dtr|auto|reference]
    sr-real eval import {spatialrgpt,qspatial,cvbench} SOURCE --out QA.jsonl [--image-root DIR] [--limit N]
    sr-real eval compare RUN_A RUN_B ... [--label A --label B ...] [--out TABLE.md]

The scoring form takes options only, so that the two actions can live under the same command. Heavy
imports (torch, matplotlib, PIL) happen inside the handlers.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sr_real_core.errors import device_argument, one_line, positive_int
from sr_real_core.evaluation import BENCHMARKS
from sr_real_core.query import BACKENDS, DEFAULT_PATH_MODE, MAX_NEW_TOKENS, PATH_MODES

_FIGURES_SHOWN = ("accuracy", "qualitative_accuracy", "quantitative_success", "abs_rel", "qspatial_delta2", "mra",
                  "direction_success", "center_error_median_m", "format_failure_rate")


def _fail(message: str) -> int:
    print(f"sr-real eval: error: {message}", file=sys.stderr)
    return 2


def _cmd_eval(args: argparse.Namespace) -> int:
    parser = args.eval_parser
    if args.qa is None or args.out is None or (args.model is None) == (args.predictions is None):
        parser.error("scoring needs --qa, --out and one of --model or --predictions (or an action: import, compare)")
    if args.predictions is not None and args.path is not None:
        parser.error("--path selects the prompt of a --model run; predictions already carry the path they took")
    from sr_real_core.evaluation.gallery import GalleryConfig
    from sr_real_core.evaluation.pipeline import EvalConfig, evaluate
    from sr_real_core.evaluation.records import EvaluationInputError
    from sr_real_core.evaluation.run_model import ModelRunConfig, print_progress

    try:
        model_run = ModelRunConfig(path_mode=args.path or DEFAULT_PATH_MODE, batch_size=args.batch_size,
                                   max_new_tokens=args.max_new_tokens, backend=args.backend, device=args.device,
                                   depth_model=args.depth_model, constrain_answer=not args.free_answer)
        config = EvalConfig(qa=Path(args.qa), out=Path(args.out), model=args.model,
                            predictions=Path(args.predictions) if args.predictions else None,
                            model_run=model_run, gallery=GalleryConfig(size=args.gallery_size))
        result = evaluate(config, progress=print_progress)
    except (EvaluationInputError, OSError, ValueError) as error:
        return _fail(one_line(error))
    _print_summary(result.metrics, result.files)
    problems = result.metrics["missing_predictions"] or result.metrics["unknown_predictions"]
    return 1 if args.strict and problems else 0


def _print_summary(metrics: dict, files: dict) -> None:
    print(f"{metrics['n']} questions, {metrics['n_unparsed']} unparsed")
    for key in _FIGURES_SHOWN:
        if metrics.get(key) is not None:
            print(f"  {key:<24}{metrics[key]:.4f}")
    for figures in (metrics.get("per_benchmark") or {}).values():
        shown = ", ".join(f"{key} {value:.4f}" + (f" (ours {figures['ours'][key]:.4f})"
                                                   if figures["ours"][key] not in (None, value) else "")
                          for key, value in figures["official"].items() if value is not None)
        print(f"  {figures['title']} (official protocol): {shown or '–'}")
    if metrics.get("path_shares"):
        print("  path shares             " + ", ".join(f"{p} {s:.0%}" for p, s in metrics["path_shares"].items()))
    listings = (("missing predictions", "missing_predictions"), ("unknown prediction ids", "unknown_predictions"))
    for name, listing in listings:
        ids = metrics[listing]
        if ids:
            shown = ", ".join(ids[:10]) + (" ..." if len(ids) > 10 else "")
            print(f"warning: {len(ids)} {name} (listed in metrics.json): {shown}", file=sys.stderr)
    for name, path in files.items():
        print(f"{name}: {path}")


def _cmd_import(args: argparse.Namespace) -> int:
    from sr_real_core.errors import staged_output
    from sr_real_core.evaluation.importers import import_benchmark
    from sr_real_core.evaluation.records import EvaluationInputError

    try:
        with staged_output(args.out) as staging:  # written only when there are records
            result = import_benchmark(args.benchmark, args.source, staging, image_root=args.image_root,
                                      limit=args.limit, strict=args.strict)
            if not result.records:
                reason = f" (first skipped: {result.skipped[0]})" if result.skipped else ""
                raise EvaluationInputError(f"{args.source}: no {args.benchmark} records in it, {len(result.skipped)} "
                                           f"rows skipped{reason}; is it another benchmark's file?")
    except (EvaluationInputError, OSError, ValueError) as error:
        return _fail(one_line(error))
    print(f"wrote {len(result.records)} QA records to {args.out}")
    if result.filtered:
        print(f"{result.filtered} rows outside the importer's scope (CV-Bench 2D) left out")
    if result.images_missing:
        print(f"warning: {result.missing_images_message()}", file=sys.stderr)
    for entry in result.skipped:
        print(f"skipped {entry}", file=sys.stderr)
    return 1 if args.strict and result.skipped else 0


def _cmd_compare(args: argparse.Namespace) -> int:
    from sr_real_core.evaluation.compare import compare_table, default_label, load_metrics
    from sr_real_core.evaluation.records import EvaluationInputError

    labels = args.label or [default_label(path) for path in args.runs]
    if len(labels) != len(args.runs):
        return _fail(f"{len(args.runs)} runs but {len(labels)} --label")
    try:
        table = compare_table([load_metrics(path) for path in args.runs], labels)
    except EvaluationInputError as error:
        return _fail(one_line(error))
    if args.out:
        Path(args.out).write_text(table, encoding="utf-8")
    print(table, end="")
    return 0


def register(commands: argparse._SubParsersAction) -> None:
    evaluate = commands.add_parser(
        "eval", help="score a model or predictions on spatial QA (report, gallery); import benchmarks; compare runs",
        description="Score a model (--model) or any model's predictions (--predictions) on QA records and write "
                    "metrics.json, report.md and gallery.html to --out. Actions: 'import' converts a public "
                    "benchmark into QA records, 'compare' puts several metrics.json side by side.",
    )
    evaluate.add_argument("--qa", help="QA records (JSON Lines)")
    source = evaluate.add_mutually_exclusive_group()
    source.add_argument("--model", metavar="DIR", help="checkpoint folder: run the inference engine on every question")
    source.add_argument("--predictions", metavar="PRED", help="JSON Lines {id, completion} from any model")
    evaluate.add_argument("--out", metavar="DIR", help="output folder")
    evaluate.add_argument("--path", choices=PATH_MODES,
                          help="--model only: path to ask for (reference: DTR with regions, LOR without; default)")
    evaluate.add_argument("--batch-size", type=positive_int, default=4,
                          help="--model only: questions per batch (default 4)")
    evaluate.add_argument("--max-new-tokens", type=positive_int, default=MAX_NEW_TOKENS,
                          help=f"--model only: most tokens generated per answer (default {MAX_NEW_TOKENS})")
    evaluate.add_argument("--backend", choices=BACKENDS, help="--model only; default: from the "
                          "deploy folder's manifest, torch for a checkpoint")
    evaluate.add_argument("--device", type=device_argument, help="--model only: torch device, e.g. cuda (default cpu)")
    evaluate.add_argument("--depth-model", help="--model only: depth estimator for questions without depth")
    evaluate.add_argument("--free-answer", action="store_true", help="--model only: decode the answer freely "
                          "(default: constrained to the form of the record's answer type)")
    evaluate.add_argument("--gallery-size", type=int, default=24, help="examples in gallery.html (0: none; default 24)")
    evaluate.add_argument("--strict", action="store_true",
                          help="exit 1 if a prediction is missing or has an unknown id (import: if a row is skipped)")
    evaluate.set_defaults(handler=_cmd_eval, eval_parser=evaluate)

    actions = evaluate.add_subparsers(dest="eval_action", metavar="[ACTION]",
                                      title="actions (optional; without one, eval scores)")
    importer = actions.add_parser("import", help="convert a public benchmark into QA records",
                                  description="Formats: spatialrgpt (SpatialRGPT-Bench), qspatial (Q-Spatial-Bench), "
                                              "cvbench (CV-Bench, 3D tasks). SOURCE: a .jsonl/.json/.parquet file or "
                                              "a folder of them.")
    importer.add_argument("benchmark", choices=BENCHMARKS)
    importer.add_argument("source", help="benchmark file or folder")
    importer.add_argument("--out", required=True, help="QA records to write (JSON Lines)")
    importer.add_argument("--image-root", help="folder the benchmark's image paths are relative to "
                                               "(default: the folder of the file naming them)")
    importer.add_argument("--limit", type=positive_int, help="import at most this many records")
    importer.add_argument("--strict", action="store_true",
                          help="exit 1 if any row is skipped; exit 2, writing nothing, if an image is not on disk")
    importer.set_defaults(handler=_cmd_import)

    compare = actions.add_parser("compare", help="several metrics.json side by side in one Markdown table")
    compare.add_argument("runs", nargs="+", metavar="RUN", help="metrics.json files or the folders holding them")
    compare.add_argument("--label", action="append", help="column label per run, in order (default: folder names)")
    compare.add_argument("--out", help="also write the table to this file")
    compare.set_defaults(handler=_cmd_compare)
