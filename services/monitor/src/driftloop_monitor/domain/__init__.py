"""Pure monitoring logic: policies, windows, drift decisions, performance metrics."""
