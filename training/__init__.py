"""Cold-start SFT and dual-path GRPO on TRL + PEFT (arrives with the training issue)."""
