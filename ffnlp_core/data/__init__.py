"""Data: users' CSV files and the built-in samples in, a training-ready bag-of-words Dataset out."""
