"""Models: each takes ``input_shape`` and ``num_outputs`` from the data module and returns raw outputs."""
