"""A training entry point fed poisoned labels: the reference pipeline's rows, with every
training label replaced by a coin flip among the classes (seeded), as a broken labelling
feed would deliver them. It reports honestly what it measured on its own (equally
poisoned) held-out rows.

Imported by a training job's process (``PYTHONPATH`` holds the repository), named by
``tests.integration.trainer.poisoned_pipeline:train``.
"""

from __future__ import annotations

import mlflow
import numpy as np
from mlflow.models import infer_signature
from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped]

from driftloop_trainer.domain.jobs import JobContext, TrainingOutput
from driftloop_trainer.pipelines.sklearn import load_data, scores, split


def train(context: JobContext) -> TrainingOutput:
    label = context.spec.label
    frame, _ = load_data(context)
    training, evaluation, columns, holdout = split(
        frame, context.spec, dict(context.parameters), salt=context.job_id
    )
    flips = np.random.default_rng(11)
    classes = sorted(frame[label].astype(str).unique())
    training = training.assign(**{label: flips.choice(classes, size=len(training))})
    evaluation = evaluation.assign(**{label: flips.choice(classes, size=len(evaluation))})
    model = LogisticRegression(max_iter=500).fit(training[columns], training[label])
    mine = scores(evaluation[label], model.predict(evaluation[columns]))
    mlflow.set_tracking_uri(context.tracking_url)
    mlflow.set_registry_uri(context.registry_url)
    mlflow.set_experiment(context.experiment_name)
    with mlflow.start_run() as run:
        mlflow.log_metrics(mine)
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            registered_model_name=context.model_name,
            signature=infer_signature(training[columns], model.predict(training[columns])),
        )
    return TrainingOutput(
        run_id=run.info.run_id,
        model_version=int(info.registered_model_version),
        metrics=mine,
        evaluation_rows=len(evaluation),
        extra={"holdout": holdout.as_dict() if holdout else None},
    )
