"""The network: the feedforward classifier over a sparse bag of words, and the activation registry."""
