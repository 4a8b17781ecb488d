"""Run configs: dataclasses read from YAML, every error naming the field at fault.

A run config is one YAML file (examples: `training/configs/tiny-sft.yaml`, `tiny-rl.yaml`):

    stage: sft | rl                 # cold-start SFT (trl.SFTTrainer) or GRPO (trl.GRPOTrainer)
    output_dir: runs/tiny-sft       # checkpoints, logs and the final model (output_dir/final)
    seed: 0
    model:     ModelConfig          # where the starting checkpoint is
    data:      DataConfig           # which `sr-real data build` mixture to read
    trainable: TrainableConfig      # per module group: full, lora or frozen
    lora:      LoraSettings         # used by the groups set to lora
    rl:        RLSettings           # stage rl only: path modes, group filter, reward
    trainer:   {...}                # fields of trl.SFTConfig (sft) or trl.GRPOConfig (rl), checked by name

Relative paths are relative to the working directory. `trainer` accepts exactly the fields of TRL's config
class, so every TRL option (learning rate, schedule, GRPO clipping, KL, ...) is set there with TRL's names;
`output_dir` and `seed` come from the top level. `load_config` parses and validates everything (the
`trainer` names and the types of TRL's simple fields included) without building a model;
`RunConfig.trl_args()` builds the TRL config object. Numbers may be written as YAML reads them or as text
("1e-5", which YAML 1.1 reads as a string).
"""
from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from sr_real_core.query import PATH_MODES
from sr_real_core.rewards import DEFAULT_CONFIG as DEFAULT_REWARD_CONFIG
from sr_real_core.rewards import RewardConfig, RewardWeights

STAGES = ("sft", "rl")
MODULE_GROUPS = ("vision", "projector", "region3d", "llm")
TRAIN_MODES = ("full", "lora", "frozen")
# How RL prompts choose their path: the mixture's own `path` column, one path for all, the reference's rule
# (DTR when the question has regions, else LOR) or auto (the policy chooses; rewards follow its choice).
RL_PATH_MODES = ("dataset", *PATH_MODES)
GROUP_FILTER = (0.2, 0.99)  # the online filter's default: the reference's (low, high) mean-reward bounds
DTYPES = ("bfloat16", "float16", "float32")


class ConfigError(ValueError):
    """A run config that cannot be used; the message names the file and the field."""


@dataclass
class ModelConfig:
    path: str  # a checkpoint directory (SR-REAL or Qwen2.5-VL) or a Hub id in the local cache
    tiny_if_missing: bool = False  # write the tiny CPU model to `path` first if nothing is there
    dtype: str | None = None  # "bfloat16", "float16", "float32"; None: as saved


@dataclass
class DataConfig:
    mixture: str  # output directory of `sr-real data build`
    train: str = "sft_train"  # mixture file name without .jsonl
    max_samples: int | None = None  # keep the first N records (after the mixture's own shuffle)
    kinds: list[str] | None = None  # SFT: keep only these record kinds (lor_cot, dtr_cot, grounding_3d, ...)
    auto_share: float = 0.0  # SFT: share of chains of thought re-asked in auto mode (training/prompts.py)
    depth: bool = True  # give the model the record's depth map (3D positional encoding) when it has one
    # SFT: made-up read-out sequences (training/pretrain.py) added to every step's loss, so that the SFT blend keeps
    # the region read-out that read-out pretraining taught; 0: none
    readout_rehearsal: int = 0
    readout_keywords: float = 0.0  # share of rehearsal sequences that also name a reading (pretrain.keyword_fraction)
    # SFT: weight of an added loss on the decision tokens alone (training/sft.py: the opening words of <think> and
    # the answer), so that the step a chain takes is learnt from the question; 0: none
    decision_weight: float = 0.0


@dataclass
class TrainableConfig:
    """Which parameters train. vision: the vision tower's blocks; projector: the patch merger that maps
    vision features into the LLM; region3d: the region projector and the 3D point encoder; llm: the language
    model and its head. The method's cold start trains all of them."""

    vision: str = "full"
    projector: str = "full"
    region3d: str = "full"
    llm: str = "full"


@dataclass
class LoraSettings:
    r: int = 16
    alpha: int = 32
    dropout: float = 0.05


@dataclass(frozen=True)
class RewardSettings(RewardWeights):
    """The weights of the total reward per path (the fields and defaults of `rewards.RewardWeights`; each path's
    weights sum to 1) and how the detection reward is normalised ("matched", or "reference": divide by the
    number of predicted boxes)."""

    detection_norm: str = DEFAULT_REWARD_CONFIG.detection_norm

    def __post_init__(self) -> None:
        self.reward_config()  # RewardWeights and RewardConfig check the values

    def reward_config(self) -> RewardConfig:
        weights = {f.name: getattr(self, f.name) for f in dataclasses.fields(RewardWeights)}
        return RewardConfig(RewardWeights(**weights), self.detection_norm)


@dataclass
class RLSettings:
    # A path mode for every prompt, or shares of path modes assigned per prompt (e.g. {reference: 0.5, auto:
    # 0.5}), drawn once per prompt id with the run's seed, so a prompt keeps its path across epochs.
    path_mode: str | dict[str, float] = "dataset"
    # Online filter: keep the prompt groups whose mean total reward lies in (low, high), exclusive; the other
    # groups leave the loss (no gradient, no KL term). The reference keeps (0.2, 0.99).
    group_filter: tuple[float, float] | None = GROUP_FILTER
    reward: RewardSettings = field(default_factory=RewardSettings)


@dataclass
class RunConfig:
    stage: str
    output_dir: str
    model: ModelConfig
    data: DataConfig
    seed: int = 0
    trainable: TrainableConfig = field(default_factory=TrainableConfig)
    lora: LoraSettings = field(default_factory=LoraSettings)
    rl: RLSettings = field(default_factory=RLSettings)
    trainer: dict[str, Any] = field(default_factory=dict)
    source: str = "<dict>"  # the file it was read from, for messages

    def trl_class(self):
        from trl import GRPOConfig, SFTConfig

        return SFTConfig if self.stage == "sft" else GRPOConfig

    def trl_args(self, **overrides: Any):
        """The trl.SFTConfig / trl.GRPOConfig of this run (`overrides` win, e.g. max_steps)."""
        values = {**self.trainer, **overrides, "output_dir": self.output_dir, "seed": self.seed}
        values.setdefault("data_seed", self.seed)
        try:
            return self.trl_class()(**values)
        except (TypeError, ValueError) as error:
            raise ConfigError(f"{self.source}: trainer: {error}") from None


# ------------------------------------------------------------------------------------------------ reading


def load_config(path: str | Path, overrides: dict[str, Any] | None = None) -> RunConfig:
    """Read and validate a run config; `overrides` are merged into it key by key, nested mappings included
    (e.g. {"output_dir": "runs/x", "model": {"path": "runs/sft/final"}})."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ConfigError(f"{path}: cannot read the config ({error.strerror})") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML ({error})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    return config_from_dict(_merged(data, overrides or {}), source=str(path))


def config_from_dict(data: dict[str, Any], source: str = "<dict>") -> RunConfig:
    config = from_mapping(RunConfig, {**data, "source": source}, source)
    try:
        _validate(config)
    except _FieldError as error:
        raise ConfigError(f"{source}: {error.field}: {error.message}") from None
    _check_trainer_fields(config)
    return config


def from_mapping(cls, data: Any, source: str = "<dict>"):
    """An instance of the dataclass `cls` from parsed YAML, type-checked; ConfigError names the field."""
    try:
        return _build(cls, data, "")
    except _FieldError as error:
        raise ConfigError(f"{source}: {error.field}: {error.message}") from None


def _merged(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in overrides.items():
        both_mappings = isinstance(value, dict) and isinstance(merged.get(key), dict)
        merged[key] = _merged(merged[key], value) if both_mappings else value
    return merged


class _FieldError(Exception):
    def __init__(self, field_name: str, message: str):
        super().__init__(f"{field_name}: {message}")
        self.field, self.message = field_name, message


def _build(cls, data: Any, prefix: str):
    """An instance of dataclass `cls` from a mapping, checking unknown keys, missing keys and types."""
    if not isinstance(data, dict):
        raise _FieldError(prefix.rstrip(".") or "config", f"expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in dataclasses.fields(cls)}
    for key in data:
        if key not in known:
            raise _FieldError(f"{prefix}{key}", f"unknown field (allowed: {', '.join(sorted(known))})")
    values = {}
    for name, spec in known.items():
        if name not in data:
            if spec.default is dataclasses.MISSING and spec.default_factory is dataclasses.MISSING:
                raise _FieldError(f"{prefix}{name}", "missing (required)")
            continue
        values[name] = _convert(hints[name], data[name], f"{prefix}{name}")
    try:
        return cls(**values)
    except ValueError as error:  # the dataclass's own checks (e.g. reward weights that do not sum to 1)
        raise _FieldError(prefix.rstrip(".") or "config", str(error)) from None


class _Unchecked(Exception):
    """A type this module does not check (TRL's enums, nested configs): the value passes as it is."""


def _convert(hint: Any, value: Any, name: str) -> Any:
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, f"{name}.")
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for option in (a for a in args if a is not type(None)):
            try:
                return _convert(option, value, name)
            except _FieldError as error:
                errors.append(error.message)
        raise _FieldError(name, " or ".join(errors))
    if origin is dict:
        if not isinstance(value, dict):
            raise _FieldError(name, f"expected a mapping, got {value!r}")
        return {str(k): _convert(args[1], v, f"{name}.{k}") for k, v in value.items()} if args else dict(value)
    if origin is list:
        if not isinstance(value, list):
            raise _FieldError(name, f"expected a list, got {value!r}")
        return [_convert(args[0], v, f"{name}[{i}]") for i, v in enumerate(value)] if args else list(value)
    if origin is tuple:
        if not isinstance(value, (list, tuple)) or len(value) != len(args):
            raise _FieldError(name, f"expected a list of {len(args)} values, got {value!r}")
        return tuple(_convert(a, v, f"{name}[{i}]") for i, (a, v) in enumerate(zip(args, value)))
    if hint is Any:
        return value
    if hint is float:
        number = _number(value)
        if number is None:
            raise _FieldError(name, f"expected a number, got {value!r}")
        return number
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _FieldError(name, f"expected an integer, got {value!r}")
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise _FieldError(name, f"expected true or false, got {value!r}")
        return value
    if hint is str:
        if not isinstance(value, str) or not value:
            raise _FieldError(name, f"expected a non-empty string, got {value!r}")
        return value
    raise _Unchecked(name)


def _number(value: Any) -> float | None:
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def _validate(config: RunConfig) -> None:
    if config.stage not in STAGES:
        raise _FieldError("stage", f"expected one of {', '.join(STAGES)}, got {config.stage!r}")
    for group in MODULE_GROUPS:
        mode = getattr(config.trainable, group)
        if mode not in TRAIN_MODES:
            raise _FieldError(f"trainable.{group}", f"expected one of {', '.join(TRAIN_MODES)}, got {mode!r}")
    if all(getattr(config.trainable, g) == "frozen" for g in MODULE_GROUPS):
        raise _FieldError("trainable", "every module group is frozen: nothing would train")
    if config.lora.r < 1 or config.lora.alpha < 1:
        raise _FieldError("lora", f"r and alpha must be >= 1, got r={config.lora.r}, alpha={config.lora.alpha}")
    if not 0.0 <= config.lora.dropout < 1.0:
        raise _FieldError("lora.dropout", f"expected a number in [0, 1), got {config.lora.dropout}")
    if config.model.dtype not in (None, *DTYPES):
        raise _FieldError("model.dtype", f"expected one of {', '.join(DTYPES)} or null, got {config.model.dtype!r}")
    if not 0.0 <= config.data.auto_share <= 1.0:
        raise _FieldError("data.auto_share", f"expected a number in [0, 1], got {config.data.auto_share}")
    if config.data.kinds is not None and not config.data.kinds:
        raise _FieldError("data.kinds", "expected a non-empty list of record kinds or null")
    if config.data.max_samples is not None and config.data.max_samples < 1:
        raise _FieldError("data.max_samples", f"expected a positive integer or null, got {config.data.max_samples}")
    _validate_rl(config.rl)


def _validate_rl(rl: RLSettings) -> None:
    modes = rl.path_mode if isinstance(rl.path_mode, dict) else {rl.path_mode: 1.0}
    for mode, share in modes.items():
        if mode not in RL_PATH_MODES:
            raise _FieldError("rl.path_mode", f"unknown path mode {mode!r} (allowed: {', '.join(RL_PATH_MODES)})")
        if share < 0:
            raise _FieldError(f"rl.path_mode.{mode}", f"a share must be non-negative, got {share}")
    if not sum(modes.values()) > 0:
        raise _FieldError("rl.path_mode", "the shares must not all be zero")
    if rl.group_filter is not None:
        low, high = rl.group_filter
        if not low < high:
            raise _FieldError("rl.group_filter", f"expected [low, high] with low < high, got {list(rl.group_filter)}")


def _check_trainer_fields(config: RunConfig) -> None:
    """`trainer` keys must be fields of the stage's TRL config, with values of the field's type where the type
    is a plain one (numbers, booleans, strings, lists of them); output_dir and seed live at the top level."""
    cls = config.trl_class()
    hints = typing.get_type_hints(cls)
    allowed = {f.name for f in dataclasses.fields(cls)}
    for key, value in list(config.trainer.items()):
        if key in ("output_dir", "seed"):
            raise ConfigError(f"{config.source}: trainer.{key}: set it at the top level of the config")
        if key not in allowed:
            raise ConfigError(f"{config.source}: trainer.{key}: not a field of trl.{cls.__name__}")
        try:
            config.trainer[key] = _convert(hints[key], value, f"trainer.{key}")
        except _Unchecked:
            pass
        except _FieldError as error:
            raise ConfigError(f"{config.source}: {error.field}: {error.message}") from None
