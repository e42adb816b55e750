"""driftloop tracking: MLflow-compatible experiment tracking that publishes run events."""
