"""Data modules: train/val/test loaders plus the metadata models are shaped by."""
