"""Optimizers (with weight-decay and per-module learning-rate groups) and learning-rate schedules."""
