"""Training stage: config and presets, losses, augmentation, EMA, checkpoints, multi-GPU, the Trainer step,
run setup, the run's files and the loop (the package docstring gives each module a line)."""
