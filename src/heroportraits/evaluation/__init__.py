"""Evaluation stage: a judge trained on the dataset, metrics, and the evaluation suite."""
