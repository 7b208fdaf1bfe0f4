"""Models: each takes its sizes (input_shape, num_outputs, vocab_size) from the data, returns raw outputs."""
