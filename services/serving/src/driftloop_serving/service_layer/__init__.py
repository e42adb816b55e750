"""The serving service's use cases: scoring requests, keeping the served models."""
