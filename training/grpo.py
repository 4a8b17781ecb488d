"""Dual-path GRPO on TRL's `GRPOTrainer`, with the rewards of `sr_real_core.rewards`.

The reward is `sr_real_core.rewards.make_sr_real_reward(...)`, passed as TRL's `reward_funcs` (TRL logs it as
`rewards/sr_real_reward/mean`; its components go through TRL's `log_metric`, see below).

TRL does the algorithm: sampling `num_generations` completions per prompt (`temperature`, `top_p`), group
advantages, the clipped objective with asymmetric clipping (`epsilon`, `epsilon_high`) and dual clip
(`delta`), the KL term against the reference (`beta`, TRL's k3 estimator = the reference's low-variance KL),
the loss aggregation (`loss_type: dapo` = token-mean over the batch), optimisation and logging. Everything is
set in the config's `trainer` section with TRL's names.

`SRRealGRPOTrainer` subclasses it only where SR-REAL's inputs require it. TRL passes a prompt's images to the
processor, which cannot then receive the regions (one per `<region>` token) nor the depth and intrinsics (the
3D positional encoding); and it re-batches completions between generation and the loss, so those inputs must
travel with their samples. The overrides:

- `_generate_and_score_completions`: encodes the batch's prompts with their regions, depth and intrinsics
  (`spatial.encode`), lets TRL generate and score, applies the group filter, and attaches each sample's visual
  tensors to the batch (`visuals`, a list, which TRL's shuffle and split carry along like any column).
- `_tokenize_prompts`: gives TRL's generation those token ids and visual tensors.
- `_get_per_token_logps_and_entropies`: scores rows with their own visual inputs (pixels and grids through
  TRL's own arguments; region weights and 3D points added to the model call by a forward pre-hook).
- `_compute_loss`: selects the visual inputs of the batch being optimised.
- `_calculate_rewards`: keeps the gathered rewards for the online group filter.
- `__init__`: refuses vLLM (it cannot compute the region and 3D inputs), has TRL build the KL reference model
  through `AutoModelForImageTextToText` (TRL looks the class up by name in `transformers`, where SR-REAL's is
  not), and suppresses sampling of `<region>` (as TRL does for image tokens: no region would fill it).

Online group filter (`rl.group_filter`, default (0.2, 0.99)): a prompt group whose mean total reward is not
strictly inside the interval leaves the loss: its advantages are zeroed and its tokens are masked out of the
loss through TRL's per-token loss mask (`tool_mask`, which multiplies the completion mask in TRL's loss), so
it adds neither policy gradient nor KL, nor weight in the token-mean. Logged as `filter/kept_groups`.

Per-step logs (besides TRL's reward, KL, clipping, entropy and completion lengths): each reward component
(`reward/format`, `reward/accuracy`, `reward/detection`), accuracy per question family (`accuracy/<family>`),
the share of completions taking each path (`path/lor`, `path/dtr`, `path/none`), and `format_failures`.

Path modes (`rl.path_mode`, applied to the dataset by `prompts.with_path`): every prompt is asked with the
path of its mode: the mixture's own `path` column (`dataset`), `lor`, `dtr`, `reference` (DTR with regions,
else LOR), or `auto` (the prompt offers both; the rewards follow the path the completion took). A mapping of
modes to shares assigns a mode per prompt.
"""
from __future__ import annotations

import contextlib
import functools
from collections.abc import Mapping
from typing import Any

import torch
from transformers import AutoModelForImageTextToText
from trl import GRPOTrainer
from trl.trainer import grpo_trainer

import sr_real_core.model.modeling  # noqa: F401  (registers SR-REAL with AutoModelForImageTextToText)
from sr_real.training.config import GROUP_FILTER
from sr_real.training.runs import AtomicCheckpoints
from sr_real.training.spatial import (encode, join_visual_inputs, record_visuals, split_visual_inputs,
                                     user_turns_with_images)
from sr_real_core.rewards import RewardConfig, make_sr_real_reward

FRAMES = "frames"  # the RL dataset's image column; not "images", which would route images around our processor


# ------------------------------------------------------------------------------------------- the trainer


@contextlib.contextmanager
def _extra_forward_inputs(model: torch.nn.Module, inputs: Mapping[str, torch.Tensor]):
    """Add keyword inputs to every call of `model` inside the block."""
    def hook(module, args, kwargs):
        return args, {**kwargs, **inputs}

    handle = model.register_forward_pre_hook(hook, with_kwargs=True)
    try:
        yield
    finally:
        handle.remove()


@contextlib.contextmanager
def _reference_models_as_image_text_to_text():
    """TRL builds the KL reference model (`beta` > 0, no LoRA) with `create_model_from_path`, which looks the
    model class up by name in `transformers`, where SR-REAL's is not; during construction, point it at the auto
    class SR-REAL (and Qwen2.5-VL) are registered with."""
    original = grpo_trainer.create_model_from_path
    grpo_trainer.create_model_from_path = functools.partial(original, architecture=AutoModelForImageTextToText)
    try:
        yield
    finally:
        grpo_trainer.create_model_from_path = original


class SRRealGRPOTrainer(AtomicCheckpoints, GRPOTrainer):
    """TRL's GRPOTrainer with SR-REAL's regions and depth, and the online group filter (see the module doc)."""

    def __init__(self, *args, group_filter: tuple[float, float] | None = GROUP_FILTER, use_depth: bool = True,
                 **kwargs):
        if kwargs["args"].use_vllm:
            raise ValueError("use_vllm: vLLM cannot compute SR-REAL's region tokens and 3D positional encoding; "
                             "generation runs on the training model (see training/README.md)")
        with _reference_models_as_image_text_to_text():
            super().__init__(*args, **kwargs)
        self.group_filter, self.use_depth = group_filter, use_depth
        processor = self.processing_class
        self._region_token_id = processor.region_token_id
        self._image_token_id = processor.tokenizer.convert_tokens_to_ids(processor.image_token)
        # Like TRL does for image tokens: a sampled <region> token would have no region to fill it.
        suppressed = [*(self.generation_kwargs.get("suppress_tokens") or []), self._region_token_id]
        self.generation_kwargs["suppress_tokens"] = suppressed
        self.generation_config.suppress_tokens = suppressed
        self._merge_size = processor.image_processor.merge_size
        self._visuals = None  # per-row visual inputs of the rows being generated, scored or optimised
        self._rollout = None  # (prompt ids, generation fields) of the batch being generated
        self._gathered_rewards = None

    # --- visual inputs of the rollout batch

    def _generate_and_score_completions(self, inputs):
        texts, visuals = [], []
        for record in inputs:
            messages = user_turns_with_images(record["prompt"], len(record[FRAMES]))
            text = self.processing_class.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
            texts.append(text)
            visuals.append(record_visuals(record, text, self.use_depth, images_key=FRAMES))
        encoding = encode(self.processing_class, texts, visuals, padding_side="left")
        input_ids, attention_mask = encoding["input_ids"], encoding["attention_mask"]
        prompt_ids = [ids[mask.bool()].tolist() for ids, mask in zip(input_ids, attention_mask)]
        fields = {k: v for k, v in encoding.items() if k not in ("input_ids", "attention_mask")}
        self._rollout = (prompt_ids, fields)
        self._visuals = split_visual_inputs(encoding, input_ids, [len(v.images) for v in visuals],
                                            self._region_token_id, self._merge_size)
        output = super()._generate_and_score_completions(inputs)
        output["visuals"] = self._visuals
        return self._filter_groups(output) if self.group_filter is not None else output

    def _tokenize_prompts(self, prompts):
        prompt_ids, fields = self._rollout
        return prompt_ids, None, dict(fields)

    def _compute_loss(self, model, inputs):
        self._visuals = inputs["visuals"]
        return super()._compute_loss(model, inputs)

    def _get_per_token_logps_and_entropies(self, model, input_ids, attention_mask, logits_to_keep, batch_size=None,
                                           compute_entropy=False, compute_aux_loss=False, **_):
        batch_size = batch_size or input_ids.size(0)
        logps, entropies, aux_losses = [], [], []
        for start in range(0, input_ids.size(0), batch_size):
            rows = slice(start, start + batch_size)
            samples = self._visuals[rows]
            visual = join_visual_inputs(samples, input_ids[rows], self._image_token_id)
            extra = {k: visual.pop(k) for k in ("region_weights", "region_points", "image_points") if k in visual}
            with _extra_forward_inputs(model, extra):
                chunk = super()._get_per_token_logps_and_entropies(
                    model, input_ids[rows], attention_mask[rows], logits_to_keep, compute_entropy=compute_entropy,
                    compute_aux_loss=compute_aux_loss, num_images=[len(s.image_grid_thw) for s in samples], **visual)
            logps.append(chunk[0])
            entropies.append(chunk[1])
            aux_losses.append(chunk[2])
        return (torch.cat(logps), torch.cat(entropies) if compute_entropy else None,
                torch.stack(aux_losses).mean() if compute_aux_loss else None)

    # --- online group filter

    def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
        self._gathered_rewards = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
        return self._gathered_rewards

    def _filter_groups(self, output: dict[str, Any]) -> dict[str, Any]:
        low, high = self.group_filter
        weights = self.reward_weights.to(self._gathered_rewards.device)
        totals = (self._gathered_rewards * weights).nansum(dim=1)
        group_means = totals.view(-1, self.num_generations).mean(dim=1)
        kept_groups = (group_means > low) & (group_means < high)
        mode = "train" if self.model.training else "eval"
        self._metrics[mode]["filter/kept_groups"].append(kept_groups.float().mean().item())
        local = slice(self.accelerator.process_index * len(output["advantages"]),
                      (self.accelerator.process_index + 1) * len(output["advantages"]))
        keep = kept_groups.repeat_interleave(self.num_generations)[local].to(output["advantages"].device)
        output["advantages"] = output["advantages"] * keep
        loss_mask = keep[:, None].to(output["completion_mask"].dtype).expand_as(output["completion_mask"])
        if "tool_mask" in output:
            loss_mask = loss_mask * output["tool_mask"]
        output["tool_mask"] = loss_mask
        output["num_items_in_batch"] = self.accelerator.gather((output["completion_mask"] * loss_mask).sum()).sum()
        return output


def build_grpo_trainer(model, processor, args, train_dataset, reward_config: RewardConfig,
                       group_filter: tuple[float, float] | None, use_depth: bool, callbacks=()) -> SRRealGRPOTrainer:
    """The trainer with the total reward of `sr_real_core.rewards` as TRL's one reward function (weight 1)."""
    reward = make_sr_real_reward(weights=reward_config.weights, detection_norm=reward_config.detection_norm,
                                 direction_near_credit=reward_config.direction_near_credit)
    return SRRealGRPOTrainer(model=model, reward_funcs=[reward], args=args,
                             train_dataset=train_dataset, processing_class=processor, callbacks=list(callbacks),
                             group_filter=group_filter, use_depth=use_depth)
