"""driftloop registry."""
