"""Use cases: what the monitor does with predictions, labels, alias moves and windows."""
