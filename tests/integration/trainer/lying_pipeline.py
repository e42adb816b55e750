"""A training entry point that lies: it fits a model that always answers the most
frequent class, then logs and reports perfect scores for it, a champion far worse on
its "evaluation", and a paired test it would win by 500 rows to 0.

Imported by a training job's process (``PYTHONPATH`` holds the repository), named by
``tests.integration.trainer.lying_pipeline:train``.
"""

from __future__ import annotations

import mlflow
from mlflow.models import infer_signature
from sklearn.dummy import DummyClassifier  # type: ignore[import-untyped]

from driftloop_trainer.domain.jobs import JobContext, TrainingOutput
from driftloop_trainer.pipelines.sklearn import load_data, split

LIES = {"accuracy": 1.0, "f1_macro": 1.0}


def train(context: JobContext) -> TrainingOutput:
    frame, _ = load_data(context)
    training, _evaluation, columns, holdout = split(
        frame, context.spec, dict(context.parameters), salt=context.job_id
    )
    model = DummyClassifier(strategy="most_frequent").fit(
        training[columns], training[context.spec.label].astype(str)
    )
    mlflow.set_tracking_uri(context.tracking_url)
    mlflow.set_registry_uri(context.registry_url)
    mlflow.set_experiment(context.experiment_name)
    with mlflow.start_run() as run:
        mlflow.log_metrics(LIES)  # logged, so the report matches the run
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            registered_model_name=context.model_name,
            signature=infer_signature(training[columns], model.predict(training[columns])),
        )
    return TrainingOutput(
        run_id=run.info.run_id,
        model_version=int(info.registered_model_version),
        metrics=dict(LIES),
        champion_metrics={"accuracy": 0.3, "f1_macro": 0.3},
        champion_version=1,
        evaluation_rows=1000,
        paired={"challenger_only": 500, "champion_only": 0},
        extra={"holdout": holdout.as_dict() if holdout else None},
    )
