"""`sr-real export check`: CPU pre-flight of a deploy folder before any GPU sees it.

Per graph: the ONNX checker (full) and strict shape inference; an audit of the ops TensorRT's ONNX parser
rejects or handles poorly; no op outside the standard ONNX domain; constant folding with onnx-graphsurgeon,
the folded graph giving the same outputs in ONNX Runtime. On real inputs (an RGB-D frame with regions):
a range scan of every FP32 intermediate tensor against the FP16 limit, and, given the FP16 export of the
same checkpoint, the FP16 graphs' answer, 3D centres and tokens compared with FP32's.
"""
from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sr_real_core.backends.host import rope_positions, vision_feeds
from sr_real_core.backends.manifest import MASK_FILL, cache_names, read_manifest

# TensorRT 10's ONNX parser (onnx-tensorrt docs/operators.md): not supported at all.
REJECTED_BY_TENSORRT = frozenset({
    "Bernoulli", "BitShift", "BlackmanWindow", "Compress", "ConcatFromSequence", "ConvInteger", "DFT", "Det",
    "DynamicQuantizeLinear", "HammingWindow", "HannWindow", "Hardmax", "IsInf", "MatMulInteger", "MaxRoiPool",
    "MaxUnpool", "MelWeightMatrix", "Multinomial", "NegativeLogLikelihoodLoss", "Optional", "OptionalGetElement",
    "OptionalHasElement", "QLinearConv", "QLinearMatMul", "SequenceAt", "SequenceConstruct", "SequenceEmpty",
    "SequenceErase", "SequenceInsert", "SequenceLength", "SequenceMap", "SoftmaxCrossEntropyLoss", "STFT",
    "SplitToSequence", "StringNormalizer", "TfIdfVectorizer", "Unique",
})
# Parsed, but slow, restricted or fragile with dynamic shapes.
POORLY_HANDLED = {
    "Loop": "control flow: no layer fusion across iterations", "If": "control flow: both branches built",
    "Scan": "control flow", "NonZero": "data-dependent output shape", "ReverseSequence": "no dynamic shapes",
    "Einsum": "no ellipsis, diagonal or broadcasting", "TopK": "K must be an initializer",
    "LayerNormalization": "TensorRT >= 8.6 only (JetPack 5 lacks it)",
    "Attention": "opset-23 op, recent parsers only", "RotaryEmbedding": "opset-23 op, recent parsers only",
}
STANDARD_DOMAINS = ("", "ai.onnx")
FP16_MAX = 65504.0
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "tabletop"


@dataclass
class Finding:
    check: str
    graph: str
    status: str  # pass, warn, fail, skip
    detail: str = ""
    data: dict[str, Any] = field(default_factory=dict)

    def line(self) -> str:
        return f"{self.status.upper():4} {self.graph:8} {self.check}: {self.detail}"


def structure_checks(path: Path, graph: str) -> list[Finding]:
    import onnx

    findings = []
    try:
        onnx.checker.check_model(str(path), full_check=True)
        findings.append(Finding("onnx checker", graph, "pass", "full check"))
    except onnx.checker.ValidationError as error:
        findings.append(Finding("onnx checker", graph, "fail", str(error).splitlines()[0]))
    model = onnx.load(str(path))
    try:
        inferred = onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True, data_prop=True)
        findings.append(Finding("strict shape inference", graph, "pass",
                                f"{len(inferred.graph.value_info)} intermediate shapes inferred"))
    except onnx.shape_inference.InferenceError as error:
        findings.append(Finding("strict shape inference", graph, "fail", str(error).splitlines()[0]))
    ops = {(node.domain, node.op_type) for node in model.graph.node}
    custom = sorted(f"{domain}::{op}" for domain, op in ops if domain not in STANDARD_DOMAINS)
    findings.append(Finding("standard-domain ops only", graph, "fail" if custom else "pass",
                            ", ".join(custom) or f"{len(ops)} op types, all in the ONNX domain"))
    names = {op for _, op in ops}
    rejected = sorted(names & REJECTED_BY_TENSORRT)
    poor = sorted(names & set(POORLY_HANDLED))
    status = "fail" if rejected else "warn" if poor else "pass"
    detail = "; ".join([f"rejected by TensorRT: {', '.join(rejected)}"] * bool(rejected)
                       + [f"{op} ({POORLY_HANDLED[op]})" for op in poor]) or "no op TensorRT rejects or handles poorly"
    findings.append(Finding("TensorRT op audit", graph, status, detail, {"ops": sorted(names)}))
    return findings


def fold_constants(path: Path):
    """The graph with constants folded (onnx-graphsurgeon), and the node counts before and after."""
    import onnx
    import onnx_graphsurgeon as gs

    model = onnx.load(str(path))
    graph = gs.import_onnx(model)
    before = len(graph.nodes)
    graph.fold_constants().cleanup().toposort()
    folded = gs.export_onnx(graph)
    return folded, before, len(graph.nodes)


def run_graph(model_or_path, feeds: dict[str, np.ndarray], outputs: list[str] | None = None) -> list[np.ndarray]:
    import onnxruntime

    source = model_or_path if isinstance(model_or_path, (str, Path)) else model_or_path.SerializeToString()
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    session = onnxruntime.InferenceSession(str(source) if isinstance(source, Path) else source, options,
                                           providers=["CPUExecutionProvider"])
    return session.run(outputs, feeds)


def folding_check(path: Path, graph: str, feeds: dict[str, np.ndarray]) -> Finding:
    folded, before, after = fold_constants(path)
    reference, result = run_graph(path, feeds), run_graph(folded, feeds)
    error = max(float(np.abs(a.astype(np.float64) - b).max()) for a, b in zip(reference, result) if a.size)
    status = "pass" if error <= 1e-4 else "fail"
    return Finding("constant folding (onnx-graphsurgeon)", graph, status,
                   f"{before} -> {after} nodes, folded graph's outputs within {error:.1e} of the original",
                   {"nodes_before": before, "nodes_after": after, "max_abs_error": error})


def peak_outside_mask(values: np.ndarray) -> float:
    """Largest |x|, leaving out the attention-mask fill (|x| within a factor 2 of |MASK_FILL|): those entries are
    the mask by construction, and being under 2 * 10^4 they can never overflow FP16 either."""
    magnitudes = np.abs(values.astype(np.float64)).ravel()
    outside = magnitudes[(magnitudes < abs(MASK_FILL) / 2) | (magnitudes > 2 * abs(MASK_FILL))]
    return float(outside.max()) if outside.size else 0.0


def range_scan(path: Path, graph: str, feeds: dict[str, np.ndarray]) -> Finding:
    """Largest magnitude of every floating intermediate tensor on real inputs, against FP16's 65504."""
    import onnx

    model = onnx.load(str(path))
    scanned = copy.deepcopy(model)
    known = {o.name for o in scanned.graph.output}
    names = [o for node in scanned.graph.node for o in node.output if o and o not in known]
    scanned.graph.output.extend(onnx.ValueInfoProto(name=name) for name in names)
    values = run_graph(scanned, feeds)
    all_names = [o.name for o in model.graph.output] + names
    peaks = {name: peak_outside_mask(v) for name, v in zip(all_names, values)
             if isinstance(v, np.ndarray) and v.dtype.kind == "f" and v.size and np.isfinite(v).all()}
    nonfinite = [name for name, v in zip(all_names, values)
                 if isinstance(v, np.ndarray) and v.dtype.kind == "f" and v.size and not np.isfinite(v).all()]
    top = sorted(peaks.items(), key=lambda item: -item[1])[:3]
    over = [name for name, peak in peaks.items() if peak > FP16_MAX]
    status = "fail" if over or nonfinite else "warn" if top and top[0][1] > FP16_MAX / 8 else "pass"
    detail = (f"{len(peaks)} tensors, largest |x| {top[0][1]:.4g} ({top[0][0]}); "
              f"{len(over)} over the FP16 max" + (f"; non-finite: {', '.join(nonfinite[:3])}" if nonfinite else ""))
    return Finding("FP16 range scan", graph, status, detail, {"top": top, "over_fp16": over})


def example_query(image: str | None = None, depth: str | None = None, intrinsics: str | None = None,
                  regions: list[dict] | None = None, question: str | None = None) -> dict[str, Any]:
    """Real inputs for the run-time checks: the given files, else the bundled tabletop RGB-D frame."""
    from PIL import Image

    from sr_real_core.geometry import load_depth

    if image is None:
        scene = json.loads((EXAMPLE / "scenes.jsonl").read_text().splitlines()[0])
        image, depth = str(EXAMPLE / scene["image"]), str(EXAMPLE / scene["depth"])
        camera = scene["intrinsics"]
        boxes = {o["name"]: o["bbox_2d"] for o in scene["objects"]}
        regions = regions or [{"box": boxes["red box"]}, {"box": boxes["green box"]}]
    else:
        camera = json.loads(Path(intrinsics).read_text()) if intrinsics else None
    regions = regions or []
    with Image.open(image) as opened:
        rgb = opened.convert("RGB")
    question = question or ("How far is the red box (red bbox) <region> from the green box (blue bbox) <region>?"
                            if len(regions) == 2 else " ".join(["Where is <region>?"] * len(regions)) or
                            "How far is the nearest object?")
    return {"question": question, "image": rgb, "depth": load_depth(depth, None) if depth else None,
            "intrinsics": camera, "regions": regions}


def graph_feeds(folder: Path, manifest: dict[str, Any], query: dict[str, Any]) -> dict[str, dict[str, np.ndarray]]:
    """Real feeds of each graph for one query: the vision graph's, and the decoder's prefill."""
    from sr_real_core.inference import SpatialReasoner
    from sr_real_core.query import Query

    reasoner = SpatialReasoner.from_pretrained(str(folder), backend="onnxruntime", device="cpu")
    item = Query(query["question"], [query["image"]], depths=[query["depth"]], intrinsics=[query["intrinsics"]],
                 regions=query["regions"])
    inputs = reasoner._inputs([item], [item.prompt_path])
    decoder = reasoner.backend.decoder
    input_ids = inputs["input_ids"].numpy()
    mask = inputs["attention_mask"].numpy()
    positions, _ = rope_positions(input_ids, mask, inputs["image_grid_thw"], manifest["model"])
    empty = np.zeros((1, manifest["model"]["num_kv_heads"], 0, manifest["model"]["head_dim"]), decoder.dtype)
    return {"vision": vision_feeds(inputs, manifest["model"], decoder.dtype),
            "embed": {"input_ids": input_ids},
            "decoder": {"inputs_embeds": decoder.prompt_embeddings(inputs), "position_ids": positions,
                        "attention_mask": mask,
                        **dict.fromkeys(cache_names("past", manifest["model"]["num_layers"]), empty)}}


def compare_fp16(fp32: Path, fp16: Path, query: dict[str, Any], max_new_tokens: int = 32) -> Finding:
    """The FP16 deploy folder against the FP32 one on the same query: tokens, answer, 3D centres."""
    from sr_real_core.inference import SpatialReasoner

    if read_manifest(fp16, verify=False).get("precision") != "fp16":
        return Finding("FP16 vs FP32", "all", "fail", f"{fp16} is not an FP16 deploy folder")
    answers = []
    for folder in (fp32, fp16):
        reasoner = SpatialReasoner.from_pretrained(str(folder), backend="onnxruntime", device="cpu",
                                                   max_new_tokens=max_new_tokens)
        answers.append(reasoner.ask(query["question"], query["image"], depth=query["depth"],
                                    intrinsics=query["intrinsics"], regions=query["regions"]))
    same_text = answers[0].completion == answers[1].completion
    same = (answers[0].answer, [d.center_3d for d in answers[0].detections]) == \
           (answers[1].answer, [d.center_3d for d in answers[1].detections])
    detail = (f"answer {answers[1].answer!r} and {len(answers[1].detections)} centres "
              f"{'equal' if same else 'DIFFER'}; completion {'identical' if same_text else 'differs'}")
    return Finding("FP16 vs FP32", "all", "pass" if same and same_text else "warn" if same else "fail", detail)


def run_checks(folder: str | Path, fp16: str | Path | None = None, query: dict[str, Any] | None = None) -> list[Finding]:
    folder = Path(folder)
    manifest = read_manifest(folder)
    query = query or example_query()
    feeds = graph_feeds(folder, manifest, query)
    findings = []
    for graph, spec in manifest["graphs"].items():
        path = folder / spec["file"]
        findings += structure_checks(path, graph)
        findings.append(folding_check(path, graph, feeds[graph]))
        if graph != "embed" and manifest.get("precision") == "fp32":
            findings.append(range_scan(path, graph, feeds[graph]))
    if fp16 is None:
        findings.append(Finding("FP16 vs FP32", "all", "skip", "give --fp16 DIR, the `sr-real export onnx "
                                                              "--precision fp16` folder of the same checkpoint"))
    else:
        findings.append(compare_fp16(folder, Path(fp16), query))
    return findings
