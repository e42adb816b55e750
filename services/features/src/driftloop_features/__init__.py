"""driftloop features."""
