"""Tasks: what a batch means (the loss, the metrics, the predictions). The trainer owns optimisation."""
