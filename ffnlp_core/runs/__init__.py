"""Runs: the job manager, run handles, worker processes, a run's history and the runs folder on disk."""
