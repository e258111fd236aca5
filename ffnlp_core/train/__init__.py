"""Training: planning a run, the manual loop and the Lightning engine (one reporting core), the CPU fast
path and its kernels, the plain autograd path, probes, evaluation and devices."""
