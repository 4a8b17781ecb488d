"""Each benchmark's scoring protocol: how its authors score it, and how this project scores it beside that.

A QA record names its benchmark in ``source.benchmark`` (the importers write it); records without one
(this project's own data) follow the ``project`` protocol. A protocol fixes:

- ``range_rule``: how the official figure reads a range answer ("1.5 to 2 m") as one value
  (``answers.LengthReading.value``). Our stricter figure instead counts a range as correct only when both
  of its ends pass.
- ``numeric_success``: "band" (0.75 * gt <= pred <= 1.25 * gt, SpatialRGPT-Bench) or "delta"
  (max(pred / gt, gt / pred) < 2, Q-Spatial; also reported at 1.5).
- ``region_field``: which region the model is given for a question: "mask" (the benchmark's RLE mask,
  written out as a PNG by the importer), "bbox_2d", or None (the regions are drawn in the image already).
- ``official``: the official figures, in reading order, as (label, key of ``benchmark_figures``).

What the official scorers do (read from their code, see ``README.md``):

- SpatialRGPT-Bench (``scripts/srgpt/eval/evaluate_spatial_with_gpt4.py``): GPT-4-turbo converts the
  answer and the response to metres (or clock hours); success 0.75*gt <= pred <= 1.25*gt, direction within
  one clock hour; "Quan overall acc" pools the distance/size categories with direction; a failed extraction
  counts as a failure; abs-rel over the extracted answers only. Ranges: the judge's prompt says nothing, so
  it picks one number; we take the midpoint. Regions: the model gets the RLE masks (``--use-mask`` default).
- Q-Spatial (the benchmark's ``evaluate_success_rate.ipynb``; VLMEvalKit ``QSpatial``): the last
  ``scalar{...}`` (the mean of the numbers inside) in the last ``distance_unit{...}`` (m, cm, mm, ft, in);
  success max(pred/gt, gt/pred) < 2 (and < 1.5); a response without the tags fails; VLMEvalKit's judge path
  extracts "(value, unit)" from free text and reads a range "a-b" as its mean.
- CV-Bench: exact option match; accuracy per source; 3D accuracy = Omni3D accuracy (the only rows imported).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

PROJECT = "project"


@dataclass(frozen=True)
class Protocol:
    benchmark: str
    title: str
    range_rule: str = "mean"
    numeric_success: str = "band"
    region_field: str | None = "bbox_2d"
    official: tuple[tuple[str, str], ...] = (("Accuracy", "accuracy"),)
    official_rule: str = ""
    our_rule: str = ""


PROTOCOLS: dict[str, Protocol] = {
    protocol.benchmark: protocol
    for protocol in (
        Protocol(
            "spatialrgpt", "SpatialRGPT-Bench", region_field="mask",
            official=(("Qualitative accuracy", "qualitative_accuracy"),
                      ("Quantitative success (distances, sizes, direction)", "quantitative_success"),
                      ("Direction success (± 1 hour)", "direction_success"), ("Abs-rel (parsed)", "abs_rel")),
            official_rule="GPT-4 judge reads both answers in metres; success iff 0.75·gt ≤ pred ≤ 1.25·gt; "
                          "direction within 1 clock hour; qualitative judged 0/1; a failed extraction fails",
            our_rule="same thresholds, answers read without a judge; a range counts only if both ends pass; "
                     "a non-length unit is unparsed (fails)",
        ),
        Protocol(
            "qspatial", "Q-Spatial", numeric_success="delta", region_field=None,
            official=(("δ < 2", "delta_2"), ("δ < 1.5", "delta_1_5")),
            official_rule="last scalar{} (mean of its numbers) × last distance_unit{}; success iff "
                          "max(pred/gt, gt/pred) < 2 (also < 1.5); no tags = failure",
            our_rule="same δ; tags or free text read; a range counts only if both ends pass",
        ),
        Protocol(
            "cvbench", "CV-Bench (3D)", region_field=None, official=(("Accuracy (Omni3D, 3D)", "accuracy"),),
            official_rule="exact option match; 3D accuracy = Omni3D accuracy",
            our_rule="same; the option is read from free text too",
        ),
        Protocol(
            PROJECT, "this project's QA", official=(("Accuracy", "accuracy"),),
            official_rule="(own data) numeric: 0.75·gt ≤ pred ≤ 1.25·gt",
            our_rule="a range counts only if both ends pass",
        ),
    )
}


def benchmark_of(raw: Mapping[str, Any]) -> str:
    """The benchmark a QA record comes from (``source.benchmark``), or ``project``."""
    source = raw.get("source")
    name = source.get("benchmark") if isinstance(source, Mapping) else raw.get("benchmark")
    return name if name in PROTOCOLS else PROJECT


def protocol_for(raw: Mapping[str, Any]) -> Protocol:
    return PROTOCOLS[benchmark_of(raw)]
