"""Where metrics go: metrics.jsonl in the run folder, Weights & Biases, and plots."""
