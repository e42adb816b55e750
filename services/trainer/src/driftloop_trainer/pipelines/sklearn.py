"""The generic scikit-learn training pipeline, the default entry point of a job spec.

``driftloop_trainer.pipelines.sklearn:train`` trains a classifier for any model whose
labelled rows and features the suite can read (the demo's ``iris-classifier`` is one);
``driftloop_trainer.pipelines.iris:train`` still names it for specs written before. A
job that needs other code names its own entry point (README, "Your own training code"):

1. **data** — reads the labelled entity rows (join keys, ``event_timestamp``, label)
   from the spec's ``labels_source`` and asks the features service for the
   point-in-time-correct feature values of each row (``POST /get-historical-features``);
   ``builtin:iris`` is the classic iris table with its features, for a suite that has
   no labelled data yet; without a ``labels_source`` the model's labels in the label
   store are joined with their features by the features service
   (``POST /labels/{model}/training-set``);
2. **training** — keeps the spec's training window, holds about half of the recent
   rows out by the trainer's rule (:mod:`driftloop_trainer.pipelines.holdout`, see
   :func:`split`), fits a scikit-learn model;
3. **registration** — logs params, metrics, the dataset (with its digest), the code
   version and a reference sample (for the monitor) to tracking with the mlflow
   client, tags the run with its lineage (trigger event, job, feature views) and
   registers the version;
4. **evaluation** — scores the new version and the current champion on the held-out
   recent rows, and counts the rows only one of them gets right; these figures are
   logged and reported, with the holdout it kept. They never decide: the trainer
   scores both models itself on the same held-out rows
   (:mod:`driftloop_trainer.pipelines.gate`) and its gate decides on those.

Parameters (strings, from the spec or the trigger; each checked and bounded, a bad one
fails the job in its setup stage with the reason): ``estimator``
(``logistic_regression``, ``decision_tree``, ``random_forest``, ``dummy``),
``max_iter``, ``C``, ``max_depth``, ``n_estimators``, ``random_state``,
``class_weight`` (``balanced`` or unset), ``features`` (comma-separated feature columns;
default: the spec's feature references, else every numeric column but keys and time),
``categorical`` (comma-separated numeric columns to one-hot encode, e.g. codes),
``reference_rows``, ``holdout`` (``recent``, the default, or ``newest``), and
``training_window_days`` / ``evaluation_fraction`` (override the spec's for one job).
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd  # type: ignore[import-untyped]

from driftloop_trainer.domain.jobs import JobContext, JobSpec, Stage, StageFailed, TrainingOutput
from driftloop_trainer.pipelines.holdout import Holdout, usable
from driftloop_trainer.pipelines.holdout import split as holdout_split
from driftloop_trainer.pipelines.mlflow_plugins import without_feast_header_provider

log = logging.getLogger(__name__)

#: Imported ahead of a job by a warm process (see ``driftloop_trainer.entrypoints.job``).
WARM_UP = (
    "mlflow",
    "mlflow.sklearn",
    "mlflow.data.pandas_dataset",
    "mlflow.models",
    "skops.io",
    "sklearn.dummy",
    "sklearn.ensemble",
    "sklearn.linear_model",
    "sklearn.metrics",
    "sklearn.tree",
    "sklearn.datasets",
)

_started = time.monotonic()


def progress(message: str) -> None:
    """One line of the job's log, with the seconds since the job started."""
    print(f"[{time.monotonic() - _started:7.2f}s] {message}", flush=True)


TIMESTAMP = "event_timestamp"
BUILTIN_IRIS = "builtin:iris"
IRIS_FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
REFERENCE_ARTIFACT_DIR = "reference"
REFERENCE_FILE = "reference.csv"

TAG_TRIGGER_ID = "driftloop.trigger.event_id"
TAG_TRIGGER_TYPE = "driftloop.trigger.event_type"
TAG_TRIGGER_SOURCE = "driftloop.trigger.event_source"
TAG_JOB = "driftloop.training_job_id"
TAG_VIEWS = "driftloop.feature_views"
TAG_REFERENCE = "driftloop.reference_data"
#: Which rows the reference sample was drawn from.
TAG_REFERENCE_FROM = "driftloop.reference_from"
TAG_CODE = "driftloop.code_version"


# -- data ------------------------------------------------------------------------------


#: Where the built-in iris table's event times end: fixed, so that the job and the
#: trainer's gate, loading it seconds apart, see the same rows (and the same holdout).
BUILTIN_IRIS_END = datetime(2026, 1, 1, tzinfo=UTC)


def builtin_iris(now: datetime | None = None) -> pd.DataFrame:
    """The iris table as labelled rows with features, spread over the 150 hours before
    ``now`` (default :data:`BUILTIN_IRIS_END`)."""
    from sklearn.datasets import load_iris  # type: ignore[import-untyped]

    data = load_iris(as_frame=True)
    frame = data.frame.rename(
        columns={
            "sepal length (cm)": "sepal_length",
            "sepal width (cm)": "sepal_width",
            "petal length (cm)": "petal_length",
            "petal width (cm)": "petal_width",
        }
    )
    frame["species"] = [str(data.target_names[i]) for i in frame.pop("target")]
    rng = np.random.default_rng(7)
    order = rng.permutation(len(frame))
    end = (now or BUILTIN_IRIS_END).replace(microsecond=0)
    frame["flower_id"] = np.arange(len(frame)) + 1
    frame[TIMESTAMP] = [end - timedelta(hours=int(len(frame) - i)) for i in order]
    return frame


def read_labels(source: str) -> pd.DataFrame:
    """Labelled entity rows from a CSV or Parquet file, local or over HTTP."""
    if source.startswith(("http://", "https://")):
        response = httpx.get(source, timeout=60)
        response.raise_for_status()
        buffer = io.BytesIO(response.content)
    else:
        buffer = io.BytesIO(Path(source.removeprefix("file://")).read_bytes())
    if source.lower().endswith((".parquet", ".pq")):
        return pd.read_parquet(buffer)
    return pd.read_csv(buffer)


def historical_features(
    features_url: str,
    spec: JobSpec,
    entities: pd.DataFrame,
    *,
    timeout: float = 120.0,
    headers: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """Point-in-time-correct features for ``entities`` from the features service."""
    frame = entities.copy()
    frame[TIMESTAMP] = pd.to_datetime(frame[TIMESTAMP], utc=True).map(
        lambda t: t.isoformat().replace("+00:00", "Z")
    )
    table = json.loads(frame.to_json(orient="split", index=False))
    body: dict[str, Any] = {
        "entities": {
            column: [row[i] for row in table["data"]] for i, column in enumerate(table["columns"])
        },
        "features": spec.features,
    }
    if spec.feature_service:
        body["feature_service"] = spec.feature_service
    response = httpx.post(
        f"{features_url.rstrip('/')}/get-historical-features",
        json=body,
        headers={"Accept": "application/json", **(headers or {})},
        timeout=timeout,
    )
    if response.status_code >= 400:
        raise StageFailed(
            Stage.DATA,
            f"the features service answered {response.status_code}: {response.text[:500]}",
            error_type="HistoricalFeaturesError",
        )
    answer = response.json()
    return pd.DataFrame(answer["data"], columns=answer["columns"])


def label_store_training_set(
    features_url: str,
    model_name: str,
    spec: JobSpec,
    *,
    timeout: float = 300.0,
    headers: Mapping[str, str] | None = None,
) -> tuple[pd.DataFrame, str]:
    """The model's labels in the features service's label store, each joined with the
    features as of its event time (``POST /labels/{model}/training-set``)."""
    url = f"{features_url.rstrip('/')}/labels/{model_name}/training-set"
    body: dict[str, Any] = {"features": spec.features, "label_column": spec.label}
    if spec.feature_service:
        body["feature_service"] = spec.feature_service
    response = httpx.post(
        url, json=body, headers={"Accept": "application/json", **(headers or {})}, timeout=timeout
    )
    if response.status_code >= 400:
        raise StageFailed(
            Stage.DATA,
            f"the label store answered {response.status_code}: {response.text[:500]}",
            error_type="NoLabels" if response.status_code == 400 else "HistoricalFeaturesError",
        )
    answer = response.json()
    frame = pd.DataFrame(answer["data"], columns=answer["columns"])
    # request_id stays: the key of a row whose label names only its prediction.
    return frame, url


def load_data(context: JobContext) -> tuple[pd.DataFrame, str]:
    """The labelled rows with their features, and where they came from (a URL or ``builtin:``)."""
    spec = context.spec
    if not spec.label:
        raise StageFailed(
            Stage.SETUP,
            "the model's job names no label column: set `spec.label` in its document",
            error_type="NoLabelColumn",
        )
    if spec.labels_source == BUILTIN_IRIS:
        return builtin_iris(), BUILTIN_IRIS
    if not spec.labels_source:
        return label_store_training_set(
            context.features_url, context.model_name, spec, headers=context.headers()
        )
    entities = read_labels(spec.labels_source)
    if TIMESTAMP not in entities.columns or spec.label not in entities.columns:
        raise StageFailed(
            Stage.DATA,
            f"labels need columns {TIMESTAMP!r} and {spec.label!r}; got {list(entities.columns)}",
            error_type="BadLabels",
        )
    frame = historical_features(context.features_url, spec, entities, headers=context.headers())
    return frame, f"{context.features_url.rstrip('/')}/get-historical-features"


def _number(
    parameters: dict[str, str], name: str, default: float, low: float, high: float
) -> float:
    text = parameters.get(name)
    if text is None:
        return default
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not low <= value <= high:
        raise StageFailed(
            Stage.SETUP,
            f"parameter {name}={text!r} must be a number from {low:g} to {high:g}",
            error_type="BadParameter",
        )
    return value


#: How the evaluation rows are chosen (the ``holdout`` parameter).
HOLDOUTS = ("recent", "newest")


def split(
    frame: pd.DataFrame,
    spec: JobSpec,
    parameters: dict[str, str] | None = None,
    *,
    salt: str = "",
) -> tuple[pd.DataFrame, pd.DataFrame, list[str], Holdout | None]:
    """Training and evaluation rows, the feature columns, and the holdout the trainer's
    gate will score on.

    The evaluation rows are drawn from the **recent** rows, the data the new version is
    meant for: with ``evaluation_fraction`` f of n rows, the newest 2·f·n rows are the
    recent ones, and about half of them are held out by the trainer's rule
    (:mod:`driftloop_trainer.pipelines.holdout`, salted with the job's id ``salt``); the
    other half train with the older rows. After an abrupt shift both the challenger's
    training and the gate's evaluation see the new distribution (holding out only the
    newest rows would train on the old distribution alone). The parameter
    ``holdout=newest`` keeps the strictly-newest split (no holdout is reported then, and
    the gate scores the rows labelled after the job started).

    The parameters ``training_window_days`` and ``evaluation_fraction`` override the
    spec's for one job (e.g. a first model trained on the whole history).
    """
    parameters = parameters or {}
    window = _number(parameters, "training_window_days", spec.training_window_days, low=0, high=1e6)
    fraction = _number(
        parameters, "evaluation_fraction", spec.evaluation_fraction, low=0.01, high=0.49
    )
    holdout = parameters.get("holdout", "recent")
    if holdout not in HOLDOUTS:
        raise StageFailed(
            Stage.SETUP,
            f"parameter holdout={holdout!r} must be one of {', '.join(HOLDOUTS)}",
            error_type="BadParameter",
        )
    frame = frame.copy()
    frame[TIMESTAMP] = pd.to_datetime(frame[TIMESTAMP], utc=True)
    if window > 0:
        start = frame[TIMESTAMP].max() - pd.Timedelta(days=window)
        frame = frame[frame[TIMESTAMP] >= start]
    columns = feature_columns(frame, spec, parameters)
    frame = usable(frame, columns=columns, label=spec.label)
    held_out = max(1, round(len(frame) * fraction))
    if len(frame) - held_out < 2 or not columns:
        raise StageFailed(
            Stage.DATA,
            f"{len(frame)} usable rows and {len(columns)} feature columns: too few to train",
            error_type="NotEnoughData",
        )
    if holdout == "newest":
        return frame.iloc[:-held_out], frame.iloc[-held_out:], columns, None
    training, evaluation, rule = holdout_split(
        frame, columns=columns, label=spec.label, salt=salt, recent_rows=2 * held_out
    )
    if len(evaluation) == 0 or len(training) < 2:
        raise StageFailed(
            Stage.DATA,
            f"{len(frame)} usable rows leave {len(training)} to train and {len(evaluation)} "
            "to evaluate on",
            error_type="NotEnoughData",
        )
    return training, evaluation, columns, rule


def feature_columns(
    frame: pd.DataFrame, spec: JobSpec, parameters: dict[str, str] | None = None
) -> list[str]:
    """The columns the model is fitted on, named, never guessed when they can be named.

    The ``features`` parameter (comma-separated) first, then the spec's feature
    references (``view:feature``); only without either, every numeric column but the
    label, the event time and key-like columns (``*_id``, ``created``). A named column
    the data lacks fails the job with the list of what it has.
    """
    named = [c.strip() for c in (parameters or {}).get("features", "").split(",") if c.strip()]
    named = named or [ref.split(":", 1)[1] for ref in spec.features if ":" in ref]
    if named:
        missing = [c for c in named if c not in frame.columns]
        if missing:
            raise StageFailed(
                Stage.DATA,
                f"feature column(s) {', '.join(missing)} not in the data "
                f"(it has {', '.join(map(str, frame.columns))})",
                error_type="MissingFeature",
            )
        return named
    skip = {TIMESTAMP, spec.label, "created"}
    return [
        c
        for c in frame.columns
        if c not in skip and pd.api.types.is_numeric_dtype(frame[c]) and not c.endswith("_id")
    ]


def categorical_columns(
    frame: pd.DataFrame, columns: list[str], parameters: Mapping[str, str] | None = None
) -> list[str]:
    """The feature columns one-hot encoded by :func:`estimator`: those that are not
    numeric, and those the ``categorical`` parameter names (comma-separated: codes such
    as a plan tier stored as numbers). A named column that is not a feature column
    fails the job's setup."""
    named = [c.strip() for c in (parameters or {}).get("categorical", "").split(",") if c.strip()]
    unknown = [c for c in named if c not in columns]
    if unknown:
        raise StageFailed(
            Stage.SETUP,
            f"categorical column(s) {', '.join(unknown)} are not feature columns "
            f"({', '.join(columns)})",
            error_type="BadParameter",
        )
    return [c for c in columns if c in named or not pd.api.types.is_numeric_dtype(frame[c])]


#: Fewest rows since a trigger's onset that make the reference sample on their own.
MIN_REFERENCE_ROWS = 50


def reference_sample(
    training: pd.DataFrame,
    evaluation: pd.DataFrame,
    columns: list[str],
    *,
    rows: int,
    onset: str = "",
) -> tuple[pd.DataFrame, str]:
    """The monitor's reference sample for the new version, and where it comes from.

    A retraining triggered by drift or degraded performance is meant for the data since
    the change began (the trigger's ``onset``): its reference is the newest ``rows`` of
    the labelled rows observed since then (held-out rows included: the reference is the
    monitor's baseline, not an evaluation), when there are ``MIN_REFERENCE_ROWS`` of
    them. Otherwise the newest ``rows`` training rows.
    """
    if onset:
        since = pd.Timestamp(onset)
        both = pd.concat([training, evaluation]).sort_values(TIMESTAMP, kind="stable")
        recent = both[pd.to_datetime(both[TIMESTAMP], utc=True) >= since]
        if len(recent) >= MIN_REFERENCE_ROWS:
            return recent[columns].tail(rows), f"since {since.isoformat()}"
    return training[columns].tail(rows), "newest training rows"


def time_ranges(training: pd.DataFrame, evaluation: pd.DataFrame) -> dict[str, str]:
    """When the training and the held-out rows were labelled (first and last event time)."""

    def stamp(frame: pd.DataFrame, which: str) -> str:
        moment = getattr(frame[TIMESTAMP], which)()
        return str(pd.Timestamp(moment).isoformat()) if len(frame) else ""

    return {
        "training_start": stamp(training, "min"),
        "training_end": stamp(training, "max"),
        "holdout_start": stamp(evaluation, "min"),
        "holdout_end": stamp(evaluation, "max"),
    }


# -- training --------------------------------------------------------------------------


ESTIMATORS = ("logistic_regression", "decision_tree", "random_forest", "dummy")


def _bad(message: str) -> StageFailed:
    return StageFailed(Stage.SETUP, message, error_type="BadParameter")


def _integer(parameters: dict[str, str], name: str, default: int, low: int, high: int) -> int:
    value = _number(parameters, name, default, low=low, high=high)
    if value != int(value):
        raise StageFailed(
            Stage.SETUP,
            f"parameter {name}={value!r} must be a whole number",
            error_type="BadParameter",
        )
    return int(value)


def estimator(parameters: dict[str, str], categorical: list[str] | None = None) -> Any:
    """The scikit-learn estimator the parameters ask for (checked and bounded).

    With ``categorical`` columns the estimator is a pipeline that one-hot encodes them
    (categories unseen in training are ignored) and passes the numeric ones through.
    """
    from sklearn.dummy import DummyClassifier  # type: ignore[import-untyped]
    from sklearn.ensemble import RandomForestClassifier  # type: ignore[import-untyped]
    from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped]
    from sklearn.tree import DecisionTreeClassifier  # type: ignore[import-untyped]

    kind = parameters.get("estimator", "logistic_regression")
    if kind not in ESTIMATORS:
        raise StageFailed(
            Stage.SETUP,
            f"unknown estimator {kind!r} (one of {', '.join(ESTIMATORS)})",
            error_type="BadParameter",
        )
    weights = parameters.get("class_weight") or None
    if weights not in (None, "balanced"):
        raise StageFailed(
            Stage.SETUP,
            f"class_weight={weights!r} must be 'balanced' or unset",
            error_type="BadParameter",
        )
    seed = _integer(parameters, "random_state", 0, 0, 2**31 - 1)
    depth = _integer(parameters, "max_depth", 0, 1, 1000) if "max_depth" in parameters else None
    model: Any
    if kind == "logistic_regression":
        model = LogisticRegression(
            max_iter=_integer(parameters, "max_iter", 500, 1, 100_000),
            C=_number(parameters, "C", 1.0, low=1e-6, high=1e6),
            class_weight=weights,
        )
    elif kind == "decision_tree":
        model = DecisionTreeClassifier(max_depth=depth, random_state=seed, class_weight=weights)
    elif kind == "random_forest":
        model = RandomForestClassifier(
            n_estimators=_integer(parameters, "n_estimators", 100, 1, 5000),
            max_depth=depth,
            random_state=seed,
            class_weight=weights,
        )
    else:
        strategy = parameters.get("strategy", "most_frequent")
        if strategy not in ("most_frequent", "prior", "stratified", "uniform"):
            raise StageFailed(
                Stage.SETUP, f"unknown strategy {strategy!r}", error_type="BadParameter"
            )
        model = DummyClassifier(strategy=strategy)
    if not categorical:
        return model
    from sklearn.compose import ColumnTransformer  # type: ignore[import-untyped]
    from sklearn.pipeline import Pipeline  # type: ignore[import-untyped]
    from sklearn.preprocessing import OneHotEncoder  # type: ignore[import-untyped]

    encode = ColumnTransformer(
        [("categorical", OneHotEncoder(handle_unknown="ignore"), list(categorical))],
        remainder="passthrough",
    )
    return Pipeline([("encode", encode), ("model", model)])


def scores(truth: Any, predicted: Any) -> dict[str, float]:
    """Accuracy and macro F1."""
    from sklearn.metrics import accuracy_score, f1_score  # type: ignore[import-untyped]

    return {
        "accuracy": float(accuracy_score(truth, predicted)),
        "f1_macro": float(f1_score(truth, predicted, average="macro", zero_division=0)),
    }


def digest(frame: pd.DataFrame) -> str:
    """A short content digest of a frame (the dataset digest logged to tracking)."""
    hashed = pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes()
    return hashlib.sha256(hashed + ",".join(map(str, frame.columns)).encode()).hexdigest()[:16]


def code_version(entry_point: str) -> str:
    """The trainer package version and a digest of the entry point's module source."""
    import importlib

    module = importlib.import_module(entry_point.partition(":")[0])
    source = Path(module.__file__ or "").read_bytes() if module.__file__ else b""
    release = package_version("driftloop-trainer")
    return f"driftloop-trainer=={release}+{hashlib.sha256(source).hexdigest()[:12]}"


# -- the pipeline ----------------------------------------------------------------------


def train(context: JobContext) -> TrainingOutput:
    """Read, train, log, register and score a challenger (see the module docstring)."""
    global _started  # noqa: PLW0603 - a warm process imported this module long ago
    _started = time.monotonic()
    spec = context.spec
    params = dict(context.parameters)
    progress(f"job {context.job_id}: training {context.model_name} with {params}")
    try:
        frame, source = load_data(context)
    except StageFailed:
        raise
    except Exception as error:
        raise StageFailed(Stage.DATA, str(error), error_type=type(error).__name__) from error
    training, evaluation, columns, holdout = split(frame, spec, params, salt=context.job_id)
    progress(f"data: {len(training)} training and {len(evaluation)} evaluation rows of {source}")
    model = estimator(params, categorical_columns(training, columns, params))
    try:
        model.fit(training[columns], training[spec.label].astype(str))
    except Exception as error:
        raise StageFailed(Stage.TRAINING, str(error), error_type=type(error).__name__) from error
    truth = evaluation[spec.label].astype(str)
    challenger = scores(truth, model.predict(evaluation[columns]))
    train_scores = scores(training[spec.label].astype(str), model.predict(training[columns]))
    progress(f"trained {type(model).__name__}: {challenger}")
    try:
        run_id, version = _log_and_register(
            context,
            model=model,
            training=training,
            evaluation=evaluation,
            columns=columns,
            source=source,
            challenger=challenger,
            train_scores=train_scores,
        )
    except Exception as error:
        raise StageFailed(
            Stage.REGISTRATION, str(error), error_type=type(error).__name__
        ) from error
    progress(f"logged run {run_id}, registered version {version}")
    try:
        champion_version, predicted = _champion_predictions(context, evaluation, columns, version)
    except Exception as error:
        raise StageFailed(Stage.EVALUATION, str(error), error_type=type(error).__name__) from error
    champion = None if predicted is None else scores(truth, predicted)
    paired = None
    if predicted is not None:
        mine = np.asarray(model.predict(evaluation[columns])).astype(str) == truth.to_numpy()
        theirs = predicted == truth.to_numpy()
        paired = {
            "challenger_only": int((mine & ~theirs).sum()),
            "champion_only": int((theirs & ~mine).sum()),
        }
    progress(f"champion version {champion_version}: {champion} (paired rows {paired})")
    return TrainingOutput(
        run_id=run_id,
        model_version=version,
        metrics=challenger,
        champion_metrics=champion,
        champion_version=champion_version,
        evaluation_rows=len(evaluation),
        paired=paired,
        extra={
            "time_ranges": time_ranges(training, evaluation),
            # The trainer's gate scores both models on exactly these held-out rows.
            "holdout": holdout.as_dict() if holdout else None,
        },
    )


def _log_and_register(
    context: JobContext,
    *,
    model: Any,
    training: pd.DataFrame,
    evaluation: pd.DataFrame,
    columns: list[str],
    source: str,
    challenger: dict[str, float],
    train_scores: dict[str, float],
) -> tuple[str, int]:
    import mlflow
    from mlflow.data.code_dataset_source import CodeDatasetSource
    from mlflow.data.http_dataset_source import HTTPDatasetSource
    from mlflow.data.pandas_dataset import from_pandas
    from mlflow.models import infer_signature
    from skops.io import dumps, get_untrusted_types  # type: ignore[import-untyped]

    without_feast_header_provider()
    spec = context.spec
    mlflow.set_tracking_uri(context.tracking_url)
    mlflow.set_registry_uri(context.registry_url)
    mlflow.set_experiment(context.experiment_name)
    views = sorted(
        set(spec.feature_views) | {r.split(":", 1)[0] for r in spec.features if ":" in r}
    )
    tags = {
        TAG_JOB: context.job_id,
        TAG_VIEWS: ",".join(views),
        TAG_CODE: code_version(spec.entry_point),
        "mlflow.source.name": spec.entry_point,
    }
    if context.trigger.get("event_id"):
        tags[TAG_TRIGGER_ID] = context.trigger["event_id"]
        tags[TAG_TRIGGER_TYPE] = context.trigger.get("event_type", "")
        tags[TAG_TRIGGER_SOURCE] = context.trigger.get("event_source", "")
    data_digest = digest(training[[*columns, spec.label]])
    reference_rows = int(context.parameters.get("reference_rows", "500"))
    reference, reference_from = reference_sample(
        training,
        evaluation,
        columns,
        rows=reference_rows,
        onset=str(context.trigger.get("onset") or ""),
    )
    tags[TAG_REFERENCE_FROM] = reference_from
    with mlflow.start_run(run_name=f"{context.model_name}-{context.job_id}") as run:
        mlflow.set_tags(tags)
        mlflow.log_params(
            {
                **dict(context.parameters),
                "estimator": type(model).__name__,
                "features": ",".join(columns),
                "label": spec.label,
                "training_rows": len(training),
                "evaluation_rows": len(evaluation),
                **time_ranges(training, evaluation),
            }
        )
        mlflow.log_metrics({**challenger, **{f"train_{k}": v for k, v in train_scores.items()}})
        dataset = from_pandas(
            training[[*columns, spec.label, TIMESTAMP]],
            source=(
                HTTPDatasetSource(source)  # type: ignore[no-untyped-call]
                if source.startswith(("http://", "https://"))
                else CodeDatasetSource(tags={"source": source, "labels": spec.labels_source})
            ),
            targets=spec.label,
            name=f"{context.model_name}-training",
            digest=data_digest,
        )
        # Which labels the version learned from: where, how many, and their time range.
        stamps = training[TIMESTAMP]
        mlflow.log_input(
            dataset,
            context="training",
            tags={
                "driftloop.labels": spec.labels_source or "label store",
                "driftloop.labels_rows": str(len(training)),
                "driftloop.labels_start": pd.Timestamp(stamps.min()).isoformat(),
                "driftloop.labels_end": pd.Timestamp(stamps.max()).isoformat(),
            },
        )
        folder = Path(context.work_dir or ".") / REFERENCE_ARTIFACT_DIR
        folder.mkdir(parents=True, exist_ok=True)
        reference.to_csv(folder / REFERENCE_FILE, index=False)
        mlflow.log_artifact(str(folder / REFERENCE_FILE), artifact_path=REFERENCE_ARTIFACT_DIR)
        mlflow.set_tag(
            TAG_REFERENCE,
            f"{run.info.artifact_uri.rstrip('/')}/{REFERENCE_ARTIFACT_DIR}/{REFERENCE_FILE}",
        )
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            registered_model_name=context.model_name,
            signature=infer_signature(training[columns], model.predict(training[columns])),
            pip_requirements=["scikit-learn", "skops"],
            # The job made the model itself, so the types skops cannot vouch for
            # (e.g. a tree's node storage) are trusted: the registry and serving load it.
            skops_trusted_types=get_untrusted_types(data=dumps(model)) or None,
        )
    return run.info.run_id, int(info.registered_model_version)


def _champion_predictions(
    context: JobContext, evaluation: pd.DataFrame, columns: list[str], challenger: int
) -> tuple[int | None, np.ndarray[Any, Any] | None]:
    """The champion's version and its answers on the evaluation rows (None: no champion)."""
    import mlflow
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    alias = context.spec.evaluation.alias
    client = MlflowClient(tracking_uri=context.tracking_url, registry_uri=context.registry_url)
    try:
        version = int(client.get_model_version_by_alias(context.model_name, alias).version)
    except MlflowException as error:
        if error.error_code == "RESOURCE_DOES_NOT_EXIST" or "not found" in str(error).lower():
            return None, None
        raise
    progress(f"scoring the champion, version {version}")
    if version == challenger:
        return None, None
    champion = mlflow.pyfunc.load_model(f"models:/{context.model_name}/{version}")
    return version, np.asarray(champion.predict(evaluation[columns])).astype(str)
