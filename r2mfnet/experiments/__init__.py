"""Multi-run experiments built from single training runs (model comparison, ablations)."""
