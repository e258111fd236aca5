"""Looking inside a run: gradient flow, hidden representations, word effects, comparisons, the lessons'
measurements and the code a configuration stands for."""
