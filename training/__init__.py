"""Building semcode's own models: the training data (`training.data`), and the trainers."""
