"""ONNX Runtime deploy folders vs PyTorch eager, side by side, on the same model on this machine's CPU.

    python benchmarks/bench_export.py [--model DIR] [--repeats 5] [--new-tokens 32]

For one real query (the bundled tabletop RGB-D frame, two regions, a DTR prompt): end-to-end latency
(image + question -> parsed answer, `SpatialReasoner.ask`), prefill (first token) and per-token decode
((generate N - generate 1) / (N - 1) tokens), for PyTorch eager and for the FP32, FP16 and INT8 deploy
folders under ONNX Runtime; deploy folder sizes. Median of --repeats. Prints figures; nothing is asserted.
Target (issue 13): ONNX Runtime per-token decode at most 0.5x PyTorch's.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sr_real.export.check import example_query  # noqa: E402
from sr_real.export.onnx_export import export_checkpoint  # noqa: E402
from sr_real.export.variants import folder_bytes, quantize_folder  # noqa: E402
from sr_real_core.inference import SpatialReasoner  # noqa: E402
from sr_real_core.model.tiny import write_tiny_model  # noqa: E402

from benchmarks.bench_model import timed as median_time  # noqa: E402


def measure(reasoner: SpatialReasoner, query: dict, new_tokens: int, repeats: int) -> dict[str, float]:
    def ask():
        return reasoner.ask(query["question"], query["image"], depth=query["depth"], intrinsics=query["intrinsics"],
                            regions=query["regions"])

    inputs = reasoner._inputs([_query(query)], ["dtr"])
    generated = len(reasoner.backend.generate(inputs, new_tokens)[0])
    reasoner.max_new_tokens = new_tokens
    end_to_end = median_time(ask, repeats)
    first = median_time(lambda: reasoner.backend.generate(inputs, 1), repeats)
    full = median_time(lambda: reasoner.backend.generate(inputs, new_tokens), repeats)
    return {"end_to_end_s": end_to_end, "prefill_s": first, "decode_s_per_token": (full - first) / max(generated - 1, 1),
            "tokens": generated, "completion": ask().completion}


def _query(query: dict):
    from sr_real_core.query import Query

    return Query(query["question"], [query["image"]], depths=[query["depth"]], intrinsics=[query["intrinsics"]],
                 regions=query["regions"], path="dtr")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="checkpoint directory (default: write a tiny one)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--new-tokens", type=int, default=32)
    args = parser.parse_args()
    query = example_query()
    with tempfile.TemporaryDirectory(prefix="sr-real-bench-export-") as scratch:
        scratch = Path(scratch)
        model = Path(args.model) if args.model else write_tiny_model(scratch / "tiny")
        folders = {"onnxruntime fp32": export_checkpoint(model, scratch / "fp32"),
                   "onnxruntime fp16": export_checkpoint(model, scratch / "fp16", precision="fp16")}
        folders["onnxruntime int8"] = quantize_folder(folders["onnxruntime fp32"], scratch / "int8")
        rows = {"pytorch eager": measure(SpatialReasoner.from_pretrained(str(model), backend="torch"), query,
                                         args.new_tokens, args.repeats)}
        for name, folder in folders.items():
            reasoner = SpatialReasoner.from_pretrained(str(folder), backend="onnxruntime", device="cpu")
            rows[name] = measure(reasoner, query, args.new_tokens, args.repeats) | {"size_mb": folder_bytes(folder) / 1e6}
    torch_decode = rows["pytorch eager"]["decode_s_per_token"]
    print(f"{'backend':18} {'end-to-end ms':>14} {'prefill ms':>11} {'decode ms/tok':>14} {'x torch':>8} "
          f"{'tokens':>7} {'folder MB':>10}  same completion as torch")
    for name, row in rows.items():
        print(f"{name:18} {row['end_to_end_s'] * 1e3:14.1f} {row['prefill_s'] * 1e3:11.1f} "
              f"{row['decode_s_per_token'] * 1e3:14.2f} {row['decode_s_per_token'] / torch_decode:8.2f} "
              f"{row['tokens']:7d} {row.get('size_mb', float('nan')):10.2f}  "
              f"{row['completion'] == rows['pytorch eager']['completion']}")
    ratio = rows["onnxruntime fp32"]["decode_s_per_token"] / torch_decode
    print(f"target: onnxruntime fp32 per-token decode <= 0.5x pytorch: {ratio:.2f}x -> "
          f"{'met' if ratio <= 0.5 else 'MISSED'}")


if __name__ == "__main__":
    main()
