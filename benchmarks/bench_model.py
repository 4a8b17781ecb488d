"""Prefill and decode latency of an SR-REAL checkpoint (default: a fresh tiny one) on this machine.

    python benchmarks/bench_model.py [--model DIR] [--device cpu] [--repeats 5] [--new-tokens 32]

Prefill: one forward pass over the prompt (image + depth + region), timed separately from the image
preprocessing. Decode: greedy `generate` of --new-tokens tokens (no early stop) minus `generate` of one token,
per token. Prints median figures; nothing is asserted.
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import numpy as np
import torch
from PIL import Image

from sr_real_core.model.loading import load_model
from sr_real_core.model.tiny import write_tiny_model


def timed(function, repeats: int) -> float:
    function()  # warm-up
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="checkpoint directory (default: write a tiny one)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--size", default="448x336", help="image WxH")
    parser.add_argument("--batch", type=int, default=1)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="sr-real-tiny-") as scratch:
        model_dir = args.model or write_tiny_model(scratch)
        model, processor = load_model(model_dir, device=args.device)
    width, height = (int(v) for v in args.size.split("x"))
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 255, (height, width, 3), dtype=np.uint8))
    depth = rng.uniform(0.5, 4.0, (height, width)).astype(np.float32)
    intrinsics = {"fx": 0.8 * width, "fy": 0.8 * width, "cx": width / 2 - 0.5, "cy": height / 2 - 0.5}
    text = processor.chat_prompt("How far is the chair (red bbox) <region> from the camera?")

    def preprocess():
        return processor(images=[image] * args.batch, text=[text] * args.batch, depths=[depth] * args.batch,
                         intrinsics=[intrinsics] * args.batch, regions=[[{"box": [0, 0, width // 3, height // 2]}]]
                         * args.batch, padding=True, padding_side="left").to(args.device)

    batch = preprocess()

    def prefill():
        with torch.inference_mode():
            model(**batch)

    def generate(tokens: int):
        with torch.inference_mode():
            model.generate(**batch, max_new_tokens=tokens, min_new_tokens=tokens, do_sample=False)

    preprocess_s = timed(preprocess, args.repeats)
    prefill_s = timed(prefill, args.repeats)
    first_token_s = timed(lambda: generate(1), args.repeats)
    generate_s = timed(lambda: generate(args.new_tokens), args.repeats)
    decode_s = (generate_s - first_token_s) / max(args.new_tokens - 1, 1)
    parameters = sum(p.numel() for p in model.parameters())
    print(f"model: {model_dir} ({parameters / 1e6:.1f}M parameters, {model.dtype}, {args.device}, "
          f"{torch.get_num_threads()} threads)")
    print(f"input: batch {args.batch}, image {width}x{height}, {batch['input_ids'].shape[1]} prompt tokens "
          f"({int((batch['input_ids'] == model.config.image_token_id).sum()) // args.batch} image tokens)")
    print(f"preprocess (processor, depth, region): {preprocess_s * 1e3:8.2f} ms")
    print(f"prefill:                               {prefill_s * 1e3:8.2f} ms")
    print(f"first token (generate, prefill incl.): {first_token_s * 1e3:8.2f} ms")
    print(f"decode per token (greedy, KV cache):   {decode_s * 1e3:8.2f} ms  "
          f"({args.batch / decode_s:.0f} tokens/s)")
    print(f"generate {args.new_tokens} tokens:                    {generate_s * 1e3:8.2f} ms")


if __name__ == "__main__":
    main()
