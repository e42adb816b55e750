"""driftloop serving."""
