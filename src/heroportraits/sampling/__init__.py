"""The sampling stage: portraits drawn from a trained checkpoint, and how they are drawn."""
