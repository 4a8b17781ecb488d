"""Inference engine: image(s), optional depth and intrinsics, regions and a question -> path, 3D detections,
reasoning and answer, with timing. One API for every backend.

    reasoner = SpatialReasoner.from_pretrained("checkpoints/sr-real-3b")
    result = reasoner.ask("How far is the chair (red bbox) <region> from the camera?", image,
                          depth=depth_m, intrinsics=intrinsics, regions=[Region(box=(40, 60, 200, 310))])
    result.path, result.answer, result.value_m, result.detections
    reasoner.answer(Query(...)), reasoner.ask_batch([Query(...), ...])   # the request type, `sr_real_core.query`

Path selection (`path`): "lor" or "dtr" ask for that path; "auto" lets the policy choose; "reference" follows
the reference code (DTR when the question has regions, LOR otherwise). The path actually taken is read from
the completion (`path`, None when the completion follows neither grammar).

With a known `answer_type` the answer is decoded constrained to that type's canonical form (yes/no, an option
letter, a length with its unit, a clock hour: `sr_real_core.constrained`); `constrain_answer=False` decodes
freely, as the model would on its own.

Regions are referred to in the question by `<region>` tokens, the i-th token for the i-th region
("the chair (red bbox) <region>"). As in training, the regions are also drawn on the image as coloured boxes,
red, blue, green, yellow in question order (`sr_real_core.marks`); `mark_regions=False` turns that off.
A backend only maps processor outputs to new token ids (`Backend`); the runtimes (PyTorch for a checkpoint,
ONNX Runtime or TensorRT for a deploy folder) live in `sr_real_core.backends`. Decoding is greedy.
"""
from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from sr_real_core.answers import parse_answer, parse_choice, parse_clock, parse_length_m, parse_yes_no
from sr_real_core.constrained import AnswerConstraint, token_texts
from sr_real_core.grammar import build_prompt, parse_completion
from sr_real_core.query import DEFAULT_PATH_MODE, MAX_NEW_TOKENS, REGION_TOKEN, Query, Region


@dataclass
class Detection3D:
    name: str
    ref: str | None
    center_3d: tuple[float, float, float]  # metres, OpenCV camera frame


@dataclass
class SpatialAnswer:
    requested_path: str  # the prompt's path: "lor", "dtr" or "auto"
    path: str | None  # the path the completion took
    answer: str | None  # the text inside <answer>
    value: float | int | str | None  # the answer parsed by answer_type (metres, letter, yes/no, clock hour)
    value_m: float | None  # the answer in metres when it is a length
    detections: list[Detection3D]
    reasoning: str | None
    completion: str
    well_formed: bool
    errors: list[str]
    latency_s: float  # preprocessing + generation + parsing of the batch this query was in
    timings: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # how the inputs were taken (`inputs.check_inputs`)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Backend(Protocol):
    """Generates the completion token ids of a batch of processor outputs (greedy decoding)."""

    def generate(self, inputs: Mapping[str, Any], max_new_tokens: int,
                 constraint: AnswerConstraint | None = None) -> list[list[int]]: ...


def length_of_answer(answer: str | None, answer_type: str | None) -> float | None:
    """The answer in metres if it is a length: always for "numeric"; for an unknown type only when the answer
    reads as no other type (not a letter, yes/no or clock hour)."""
    if not answer or answer_type not in ("numeric", None):
        return None
    if answer_type is None and any(parse(answer) is not None for parse in (parse_choice, parse_yes_no, parse_clock)):
        return None
    return parse_length_m(answer)


def marked_images(images: Sequence[Any], regions: Sequence[Region]) -> list[Any]:
    """The images with each region outlined in its mark colour (the i-th region of the query gets the i-th
    colour), the convention the data engine trains with. Images without regions are returned untouched."""
    import numpy as np

    from sr_real_core.marks import MAX_REGIONS, MARK_COLOURS, draw_regions, region_ref

    if len(regions) > MAX_REGIONS:
        raise ValueError(f"at most {MAX_REGIONS} regions can be marked ({', '.join(MARK_COLOURS)}), got {len(regions)}")
    marks: dict[int, list[Region]] = {}
    for index, region in enumerate(map(Region.from_value, regions)):
        box = region.bounds()
        if box is None:
            continue  # the processor reports the empty mask
        marks.setdefault(region.image_index, []).append(Region(box=box, ref=region_ref(index, "bbox")))
    return [draw_regions(np.asarray(image.convert("RGB")) if hasattr(image, "convert") else np.asarray(image),
                         marks[i]) if i in marks else image
            for i, image in enumerate(images)]


def _boxes_of(regions: Sequence[Region], image_index: int, image: Any) -> list[tuple[float, ...]]:
    """The checked boxes of the regions on one image (before they are drawn on it)."""
    from sr_real_core.inputs import check_box, image_size

    width, height = image_size(image)
    return [check_box(region.box, width, height, f"region {number + 1}") for number, region in enumerate(regions)
            if region.box is not None and region.image_index == image_index]


class SpatialReasoner:
    """The engine: builds prompts, runs a backend, parses completions."""

    def __init__(self, processor, backend: Backend, *, max_new_tokens: int = MAX_NEW_TOKENS, depth_estimator=None,
                 mark_regions: bool = True, constrain_answer: bool = True):
        self.processor = processor
        self.backend = backend
        self.max_new_tokens = max_new_tokens
        self.constrain_answer = constrain_answer  # an answer of the asked type (see the module docstring)
        self._token_texts: list[str] | None = None
        self.mark_regions = mark_regions  # draw the regions on the images, as the training data does
        self.depth_estimator = depth_estimator  # fills in depth for images that have none (see depth_estimation)

    @classmethod
    def from_pretrained(cls, path: str, *, backend: str | None = None, device: str | None = None, dtype=None,
                        max_new_tokens: int = MAX_NEW_TOKENS, depth_model: str | None = None,
                        constrain_answer: bool = True) -> SpatialReasoner:
        """A checkpoint (PyTorch) or a deploy folder (`sr-real export onnx`; ONNX Runtime or TensorRT, as its
        manifest says unless `backend` names one). A backend that cannot load here raises with the reason."""
        from sr_real_core.backends import load_backend

        processor, runtime = load_backend(path, backend, device=device, dtype=dtype)
        depth_estimator = None
        if depth_model is not None:
            from sr_real_core.model.depth_estimation import MonocularDepthEstimator

            depth_estimator = MonocularDepthEstimator(depth_model, device=device or "cpu")
        return cls(processor, runtime, max_new_tokens=max_new_tokens, depth_estimator=depth_estimator,
                   constrain_answer=constrain_answer)

    def ask(self, question: str, images: Any, *, depth: Any = None, intrinsics: Any = None,
            regions: Sequence[Region | Mapping[str, Any]] = (), path: str = DEFAULT_PATH_MODE,
            answer_type: str | None = None) -> SpatialAnswer:
        """One question about one image (or a list of images, with lists of depths and intrinsics)."""
        several = isinstance(images, (list, tuple))
        return self.answer(Query(question, list(images) if several else [images],
                                 depths=depth if several or depth is None else [depth],
                                 intrinsics=intrinsics if several or intrinsics is None else [intrinsics],
                                 regions=regions, path=path, answer_type=answer_type))

    def answer(self, query: Query) -> SpatialAnswer:
        """One query."""
        return self.ask_batch([query])[0]

    def ask_batch(self, queries: Sequence[Query]) -> list[SpatialAnswer]:
        """Answer several queries in one padded batch."""
        start = time.perf_counter()
        paths = [q.prompt_path for q in queries]
        notes: list[list[str]] = []
        inputs = self._inputs(queries, paths, notes)
        prepared = time.perf_counter()
        completions = self.processor.batch_decode(
            self.backend.generate(inputs, self.max_new_tokens, self._constraint(queries)), skip_special_tokens=True)
        generated = time.perf_counter()
        answers = [parse_spatial_answer(text, requested, q.answer_type)
                   for text, requested, q in zip(completions, paths, queries)]
        done = time.perf_counter()
        timings = {"preprocess_s": prepared - start, "generate_s": generated - prepared, "parse_s": done - generated}
        for answer, query_notes in zip(answers, notes):
            answer.latency_s, answer.timings, answer.notes = done - start, dict(timings), query_notes
        return answers

    def _constraint(self, queries: Sequence[Query]) -> AnswerConstraint | None:
        """The batch's answer constraint; None when it is off or no query has a known answer type."""
        if not self.constrain_answer or not any(q.answer_type for q in queries):
            return None
        if self._token_texts is None:
            self._token_texts = token_texts(self.processor.tokenizer)
        return AnswerConstraint(self._token_texts, [q.answer_type for q in queries], [q.question for q in queries])

    def _inputs(self, queries: Sequence[Query], paths: Sequence[str], notes: list[list[str]] | None = None):
        """Processor inputs of a batch; `notes` receives, per query, the notes of the shared input validation."""
        from sr_real_core.inputs import InputError, check_inputs, check_question, image_size

        texts, images, depths, intrinsics = [], [], [], []
        notes = [] if notes is None else notes
        for query, path in zip(queries, paths):
            check_question(query.question)
            if query.question.count(REGION_TOKEN) != len(query.regions):
                raise InputError(f"the question has {query.question.count(REGION_TOKEN)} {REGION_TOKEN} tokens but "
                                 f"{len(query.regions)} regions were given: refer to the i-th region with the i-th "
                                 f"{REGION_TOKEN}, e.g. 'the chair (red bbox) {REGION_TOKEN}'")
            texts.append(self.processor.chat_prompt(build_prompt(query.question, path, query.answer_type),
                                                    num_images=len(query.images)))
            n = len(query.images)
            query_depths = list(query.depths) if query.depths is not None else [None] * n
            query_intrinsics = list(query.intrinsics) if query.intrinsics is not None else [None] * n
            if len(query_depths) != n or len(query_intrinsics) != n:
                raise ValueError(f"{n} images need {n} depth maps and {n} intrinsics (None where absent), got "
                                 f"{len(query_depths)} and {len(query_intrinsics)}")
            boxes = [_boxes_of(query.regions, index, image) for index, image in enumerate(query.images)]
            marked = marked_images(query.images, query.regions) if self.mark_regions else query.images
            query_notes: list[str] = []
            for image, depth, camera, image_boxes in zip(marked, query_depths, query_intrinsics, boxes):
                if depth is None and self.depth_estimator is not None:
                    depth = self.depth_estimator(image)
                    camera = camera if self.depth_estimator.metric else None  # relative depth: pseudo-3D
                checked = check_inputs(query.question, *image_size(image), depth=depth, intrinsics=camera,
                                       boxes=image_boxes)
                query_notes += checked.notes
                images.append(image)
                depths.append(checked.depth)
                intrinsics.append(checked.intrinsics)
            notes.append(query_notes)
        return self.processor(images=images, text=texts, regions=[list(q.regions) for q in queries],
                              depths=depths, intrinsics=intrinsics, padding=True, padding_side="left")


def parse_spatial_answer(completion: str, requested_path: str, answer_type: str | None) -> SpatialAnswer:
    """A completion read as an answer: its path, answer, value, 3D detections and reasoning."""
    parsed = parse_completion(completion)
    value = parse_answer(parsed.answer, answer_type) if parsed.answer and answer_type else None
    return SpatialAnswer(
        requested_path=requested_path, path=parsed.path, answer=parsed.answer, value=value,
        value_m=length_of_answer(parsed.answer, answer_type),
        detections=[Detection3D(d.name, d.ref, d.center) for d in parsed.detections],
        reasoning=parsed.think, completion=completion, well_formed=parsed.well_formed,
        errors=list(parsed.errors), latency_s=0.0)
