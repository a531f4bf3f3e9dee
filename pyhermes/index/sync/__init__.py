"""Keeping the index in step with the run directories: reading them (in worker processes too), telling what changed, the syncer and its transactions, checks."""
