"""A tiny SR-REAL checkpoint (a few million parameters) for CPU tests, benchmarks and the quickstart.

Everything is made here, offline: a byte-level BPE tokenizer trained on a small generated corpus of spatial
questions and answers in the project's grammar, a Qwen2.5-VL-shaped configuration scaled down, random
weights. It is saved and reloaded exactly like a real checkpoint (model + processor in one directory).
An untrained tiny model answers gibberish; it exists to exercise the code paths.
"""
from __future__ import annotations

import json
import random
from pathlib import Path

from sr_real_core.model.configuration import SRRealConfig
from sr_real_core.query import REGION_TOKEN

# Qwen2.5-VL's special tokens, in Qwen's order, then SR-REAL's region token.
SPECIAL_TOKENS = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
    REGION_TOKEN,
)
TINY_VOCAB_SIZE = 2048  # at most; the corpus yields about 1,500 entries
TINY_MAX_PIXELS = 28 * 28 * 64  # at most 64 image tokens per image: keeps the CPU quickstart fast

# Qwen2-VL's chat template (same format, written for this project): a default system turn, images as
# <|vision_start|><|image_pad|><|vision_end|>, and an assistant prefix when asked for a generation prompt.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
    "{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' or 'image' in part %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}"
    "<|im_end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

_OBJECTS = ("chair", "table", "cabinet", "sofa", "lamp", "door", "window", "bed", "desk", "shelf", "box",
            "monitor", "plant", "bottle", "cup", "book", "person", "car", "tree", "bag")
_COLOURS = ("red", "blue", "green", "yellow")
_UNITS = ("m", "meters", "metres", "cm", "centimeters", "inches", "feet", "foot", "mm")
# General words so that byte-level BPE learns a vocabulary of a few thousand entries, not only the templates.
_WORDS = """
the a an of to in on at by for with from into onto over under above below behind front left right near far
close closer closest farther farthest next between across along around inside outside top bottom side middle
center centre corner edge back up down forward camera scene image picture photo view frame robot gripper arm
hand object objects item items region regions point points box boxes mask masks depth distance height width
length size scale metric metre meter metres meters centimetre centimetres millimetre inch inches foot feet yard
how what which where when who why is are was were be been being has have had do does did can could should would
will shall may might must not no yes true false more less most least than then there here this that these those
it its they them their we our you your he she his her one two three four five six seven eight nine ten eleven
twelve hundred thousand half quarter about around approximately roughly exactly estimate answer question think
reason reasoning step steps first second third finally therefore so because since if else and or but also only
big bigger biggest small smaller smallest large larger tall taller tallest short shorter shortest wide wider
thin thinner long longer high higher low lower heavy light dark bright clockwise direction clock hour hours
o'clock north south east west kitchen room bedroom office living bathroom hallway floor wall ceiling ground
counter sink stove oven fridge refrigerator microwave toilet mirror picture painting curtain blind rug carpet
pillow blanket towel basket bin trash can keyboard mouse laptop phone screen television tv remote speaker
clock vase bowl plate fork knife spoon glass mug jar pot pan kettle toaster chair stool bench couch armchair
ottoman dresser wardrobe closet drawer nightstand bookcase bookshelf cabinet cupboard table desk counter island
person man woman child dog cat bird car truck bus bicycle motorcycle tree bush flower grass road sidewalk
building house fence sign pole light lamp traffic street parking lot field sky cloud sun water river lake
""".split()
_QUESTIONS = (
    "How far apart are {a} and {b}?",
    "What is the distance between {a} and {b}?",
    "How wide is {a}?",
    "How tall is {a}?",
    "What is the horizontal distance between {a} and {b}?",
    "What is the vertical distance between {a} and {b}?",
    "Is {a} to the left of {b}?",
    "Is {a} behind {b}?",
    "Which is closer to the camera, {a} or {b}?",
    "Is {a} above {b}?",
    "Is {a} bigger than {b}?",
    "If you are at {a}, where will you find {b}?",
)


def tiny_corpus(num_lines: int = 3000, seed: int = 0) -> list[str]:
    """Spatial questions, LOR and DTR completions in the project's grammar, numbers and units."""
    rng = random.Random(seed)
    lines = []
    for _ in range(num_lines):
        a, b = rng.sample(_OBJECTS, 2)
        ca, cb = rng.sample(_COLOURS, 2)
        ref_a, ref_b = f"the {a} ({ca} bbox) {REGION_TOKEN}", f"the {b} ({cb} bbox) {REGION_TOKEN}"
        question = rng.choice(_QUESTIONS).format(a=ref_a, b=ref_b)
        centres = [",".join(f"{rng.uniform(-3, 6):.2f}" for _ in range(3)) for _ in range(2)]
        value = f"{rng.uniform(0.05, 8):.2f}"
        answer = rng.choice((value, f"{value} {rng.choice(_UNITS)}", rng.choice("ABCD"),
                             f"{rng.randint(1, 12)} o'clock", rng.choice(("yes", "no"))))
        think = (f"The {a} is at {centres[0]} and the {b} is at {centres[1]}. "
                 f"The difference is about {value} meters. So the answer is {answer}.")
        detect = (f"<detect>Find 2 relevant objects:\n"
                  f'<3d_box center="{centres[0]}">{a} ({ca} bbox)</3d_box>\n'
                  f'<3d_box center="{centres[1]}">{b} ({cb} bbox)</3d_box></detect>\n')
        completion = f"<think>{think}</think>\n<answer>{answer}</answer>"
        lines.append(question)
        lines.append(" ".join(rng.choice(_WORDS) for _ in range(rng.randint(5, 20))).capitalize() + ".")
        lines.append(detect + completion if rng.random() < 0.5 else completion)
    return lines


def train_tiny_tokenizer(vocab_size: int = TINY_VOCAB_SIZE):
    """A Qwen2-style byte-level BPE tokenizer trained on `tiny_corpus()` (deterministic)."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from transformers import AddedToken, Qwen2Tokenizer
    from transformers.models.qwen2.tokenization_qwen2 import PRETOKENIZE_REGEX

    # Same normaliser and pre-tokeniser as Qwen2Tokenizer, so that its vocab and merges mean the same there.
    bpe = Tokenizer(models.BPE())
    bpe.normalizer = normalizers.NFC()
    bpe.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size - len(SPECIAL_TOKENS), show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    bpe.train_from_iterator(tiny_corpus(), trainer=trainer)

    trained = json.loads(bpe.to_str())["model"]
    merges = [tuple(merge) for merge in trained["merges"]]
    tokenizer = Qwen2Tokenizer(vocab=trained["vocab"], merges=merges, chat_template=CHAT_TEMPLATE,
                               eos_token="<|im_end|>", pad_token="<|endoftext|>", model_max_length=4096)
    tokenizer.add_tokens([AddedToken(token, special=True, normalized=False) for token in SPECIAL_TOKENS],
                         special_tokens=True)
    return tokenizer


def tiny_config(tokenizer) -> SRRealConfig:
    """Qwen2.5-VL's architecture scaled down: 2 vision blocks (128 wide), 4 decoder layers (256 wide)."""
    ids = {token: tokenizer.convert_tokens_to_ids(token) for token in SPECIAL_TOKENS}
    vocab_size = -(-len(tokenizer) // 64) * 64  # padded like Qwen's embeddings
    text = dict(vocab_size=vocab_size, hidden_size=256, intermediate_size=512, num_hidden_layers=4,
                num_attention_heads=8, num_key_value_heads=2, max_position_embeddings=4096,
                # mrope_section splits the rotary half head dim (256 / 8 / 2 = 16) into t, h, w
                rope_parameters={"rope_type": "default", "rope_theta": 1_000_000.0, "mrope_section": [4, 6, 6]},
                bos_token_id=ids["<|endoftext|>"], eos_token_id=ids["<|im_end|>"],
                pad_token_id=ids["<|endoftext|>"])
    vision = dict(depth=2, hidden_size=128, intermediate_size=256, num_heads=4, patch_size=14,
                  spatial_merge_size=2, temporal_patch_size=2, window_size=112, out_hidden_size=256,
                  fullatt_block_indexes=[1])
    return SRRealConfig(text_config=text, vision_config=vision, image_token_id=ids["<|image_pad|>"],
                        video_token_id=ids["<|video_pad|>"], vision_start_token_id=ids["<|vision_start|>"],
                        vision_end_token_id=ids["<|vision_end|>"], region_token_id=ids[REGION_TOKEN],
                        region_evidence=True)


def tiny_processor(tokenizer, evidence_text: bool = False):
    from transformers import Qwen2VLImageProcessor, Qwen2VLVideoProcessor

    from sr_real_core.model.processing import SRRealProcessor

    size = {"shortest_edge": 56 * 56, "longest_edge": TINY_MAX_PIXELS}
    return SRRealProcessor(image_processor=Qwen2VLImageProcessor(size=size),
                           tokenizer=tokenizer, video_processor=Qwen2VLVideoProcessor(size=size),
                           chat_template=CHAT_TEMPLATE, evidence_text=evidence_text)


def write_tiny_model(out: str | Path, seed: int = 0, evidence_text: bool = False) -> Path:
    """Write a tiny SR-REAL checkpoint (config, safetensors weights, processor) to `out`; same seed, same bytes.
    evidence_text: the processor writes each metric region's evidence after its `<region>` (processing.py)."""
    import torch
    from transformers import GenerationConfig

    from sr_real_core.model.modeling import SRRealForConditionalGeneration

    out = Path(out)
    tokenizer = train_tiny_tokenizer()
    config = tiny_config(tokenizer)
    torch.manual_seed(seed)
    model = SRRealForConditionalGeneration(config)
    model.generation_config = GenerationConfig(
        eos_token_id=config.text_config.eos_token_id, pad_token_id=config.text_config.pad_token_id,
        do_sample=False)
    model.save_pretrained(out)
    tiny_processor(tokenizer, evidence_text).save_pretrained(out)
    return out
