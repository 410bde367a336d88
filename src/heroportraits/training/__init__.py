"""Training stage: config and presets, losses, augmentation, EMA, checkpoints, multi-GPU, the loop."""
