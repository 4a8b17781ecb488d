"""Fuzz figures of the spatial query node core: random and mutated messages of every subscribed type (std_msgs
String queries, Image, CompressedImage, depth Image, CameraInfo, Detection2DArray, PointStamped; as message
objects and as mutated CDR bytes, see tests/support/fuzz_messages.py), then a valid query.

    .venv/bin/python benchmarks/bench_fuzz.py [--per-type 10000] [--random]

Prints, per type, the messages sent (delivered to the handler, dropped at the transport because their bytes do
not deserialise, follow-up queries on what they left), what the core rejected (skipped camera messages, error and
busy answers), the failures its guards caught (0 expected: every rejection should be a checked one) and the rate;
then whether the node is alive and its answer to a valid query afterwards. Exits 1 if a handler raised or the
node did not answer.
"""
from __future__ import annotations

import argparse
import logging
import sys
import time
import warnings
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import cv2  # noqa: E402

from support.fuzz_messages import MSGTYPES, answer_after, feed_frame, fuzz_input, scripted_node  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--per-type", type=int, default=10_000, help="messages per subscribed type (default 10000)")
    parser.add_argument("--random", action="store_true", help="a new random run (default: the same run each time)")
    args = parser.parse_args()
    logging.getLogger("sr_real").setLevel(logging.CRITICAL)  # the node logs each kind of rejection: noise here
    warnings.simplefilter("ignore", RuntimeWarning)  # numpy on 1e300 coordinates, which the core then refuses
    # OpenCV logs each broken PNG; libjpeg still warns on stderr (2>/dev/null).
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)

    service, published = scripted_node()
    print(f"{'type':<18}{'sent':>7}{'delivered':>10}{'dropped':>9}{'follow-up':>10}{'rejected':>10}"
          f"{'guard':>7}{'msg/s':>8}")
    total = Counter()
    try:
        for key in MSGTYPES:
            feed_frame(service)
            before = Counter(service.counters)
            start = time.perf_counter()
            sent = fuzz_input(service, key, args.per_type, seed=None if args.random else 0)
            seconds = time.perf_counter() - start
            after = Counter(service.counters)
            rejected = sum(after[name] - before[name] for name in after
                           if name.endswith(("_skipped", "queries_error", "queries_busy", "queries_no_frame")))
            caught = sum(after[name] - before[name] for name in after if name.endswith("_failed"))
            count = sent["delivered"] + sent["dropped at the transport"]
            total.update({"sent": count, "caught": caught})
            print(f"{key:<18}{count:>7}{sent['delivered']:>10}{sent['dropped at the transport']:>9}"
                  f"{sent['follow-up queries']:>10}{rejected:>10}{caught:>7}{count / seconds:>8.0f}", flush=True)
        answer = answer_after(service, published)
    finally:
        service.stop()
    alive = answer is not None and answer.get("status") == "ok"
    print(f"\n{total['sent']} messages; guard catches {total['caught']}; node alive: {'yes' if alive else 'NO'}; "
          f"answer after: {answer and answer.get('status')} ({answer and answer.get('answer')!r}, "
          f"value_m {answer and answer.get('value_m')})")
    return 0 if alive else 1


if __name__ == "__main__":
    sys.exit(main())
