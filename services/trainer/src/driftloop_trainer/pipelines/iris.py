"""The generic scikit-learn pipeline under its first name, for job specs that name
``driftloop_trainer.pipelines.iris:train``; new specs name
``driftloop_trainer.pipelines.sklearn:train`` (the default)."""

from driftloop_trainer.pipelines.sklearn import load_data, split, train

__all__ = ["load_data", "split", "train"]
