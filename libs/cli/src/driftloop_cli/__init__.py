"""driftloop cli library."""
