"""Training, evaluation and benchmarking of the dunscan text model (`make train/eval/bench`)."""
