"""Cold-start SFT and dual-path GRPO on TRL + PEFT, the CPU quickstart (`make demo`), ablations and multi-GPU
recipes. See training/README.md; the CLI is `sr-real train {sft, rl, quickstart, ablations}`."""
