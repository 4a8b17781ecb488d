"""Evaluation harness: score SR-REAL models and any model's predictions on spatial benchmarks.

Modules (imported on demand; this package itself stays light for ``sr-real --help``):

- ``records``: load and validate QA records and predictions (duplicate ids are errors naming them).
- ``understanding``: read free-text answers in the light of their question (units, letters, predicates).
- ``scoring``: per-question verdicts and the figures of ``metrics.json`` (overall, per category, per path).
- ``run_model``: predictions from our own model through the inference engine.
- ``importers``: SpatialRGPT-Bench, Q-Spatial and CV-Bench 3D -> QA records.
- ``report`` (Markdown + plots), ``gallery`` (HTML examples), ``compare`` (runs side by side).
- ``pipeline``: one evaluation run end to end; ``cli``: ``sr-real eval``.
"""

BENCHMARKS = ("spatialrgpt", "qspatial", "cvbench")  # the formats `sr-real eval import` reads
