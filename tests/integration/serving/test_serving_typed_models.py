"""Models of any flavor, typed by their signature, served from the real registry.

Registered with the mlflow client and aliased: a scikit-learn Pipeline over a string,
a float and an integer column (skops, the fast loader, typed inputs), a custom
``PythonModel`` answering strings and a LightGBM classifier (both through
``mlflow.pyfunc``). Each answers on V2 and ``/invocations`` as it does in process; a
request that does not fit the signature is a 400 naming the column and the row, and
is not logged; a version whose Python package is missing never swaps in.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import mlflow
import numpy as np
import pandas as pd  # type: ignore[import-untyped]
import pytest
from lightgbm import LGBMClassifier
from mlflow import MlflowClient
from mlflow.models import infer_signature
from mlflow.pyfunc.model import PythonModel
from sklearn.compose import ColumnTransformer  # type: ignore[import-untyped]
from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped]
from sklearn.pipeline import Pipeline  # type: ignore[import-untyped]
from sklearn.preprocessing import OneHotEncoder, StandardScaler  # type: ignore[import-untyped]

from driftloop.serving.v1 import events_pb2 as serving_events
from driftloop_bus.embedded import EmbeddedBroker
from driftloop_events.envelope import from_record
from driftloop_events.errors import EnvelopeError
from driftloop_events.topics import TOPICS
from driftloop_events.values import record_to_dict
from driftloop_kit.testing import ServedApp, auth_headers

from ..bus.helpers import eventually
from ..features.conftest import read_records
from ..stack import Stack
from .conftest import register_sklearn, serving_settings, start_serving

pytestmark = pytest.mark.integration

PIPELINE, LABELLER, BOOSTED = "typed-pipeline", "typed-labeller", "typed-lightgbm"


class Labeller(PythonModel):
    """A custom model answering strings: the city in capitals, and how often it was seen."""

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> Any:
        return [
            f"{city.upper()}x{visits}{'!' if member else ''}"
            for city, visits, member in zip(
                model_input["city"], model_input["visits"], model_input["member"], strict=True
            )
        ]


class NeedsAPackage(Labeller):
    """A model whose code needs a package serving does not have."""

    def load_context(self, context: Any) -> None:
        import driftloop_missing_dependency  # type: ignore[import-not-found]  # noqa: F401


def customers(rows: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "city": rng.choice(["Lyon", "Oslo", "Rome"], rows),
            "income": rng.normal(50, 10, rows).round(3),
            "visits": rng.integers(0, 20, rows).astype(np.int64),
        }
    )


def city_pipeline(frame: pd.DataFrame, labels: Any) -> Pipeline:
    """A scikit-learn Pipeline over the string city and two numbers, fitted."""
    return Pipeline(
        [
            (
                "prepare",
                ColumnTransformer(
                    [
                        ("city", OneHotEncoder(handle_unknown="ignore"), ["city"]),
                        ("numbers", StandardScaler(), ["income", "visits"]),
                    ]
                ),
            ),
            ("classify", LogisticRegression(max_iter=500)),
        ]
    ).fit(frame, labels)


def register_labeller(name: str, frame: pd.DataFrame) -> tuple[pd.DataFrame, Labeller]:
    """Register a :class:`Labeller` as ``name`` (pyfunc); its input frame and itself."""
    labeller_frame = frame.assign(member=frame["visits"] > 10)
    labeller = Labeller()
    with mlflow.start_run():
        mlflow.pyfunc.log_model(
            name="model",
            python_model=labeller,
            registered_model_name=name,
            signature=infer_signature(
                labeller_frame, labeller.predict(None, labeller_frame.head(3))
            ),
            pip_requirements=["mlflow-skinny", "pandas"],
        )
    return labeller_frame, labeller


@dataclass
class Registered:
    """The module's registered models, and what each answers in process."""

    frame: pd.DataFrame
    pipeline: Pipeline
    labeller_frame: pd.DataFrame
    labeller: Labeller
    iris: pd.DataFrame
    boosted: LGBMClassifier


@pytest.fixture(scope="module")
def registered(serving_stack: Stack) -> Registered:
    frame = customers(300)
    labels = np.where((frame["city"] == "Oslo") | (frame["income"] > 55), "buy", "skip")
    pipeline = city_pipeline(frame, labels)
    register_sklearn(PIPELINE, pipeline, frame)

    labeller_frame, labeller = register_labeller(LABELLER, frame)

    rng = np.random.default_rng(1)
    iris = pd.DataFrame(rng.normal(size=(300, 4)), columns=["a", "b", "c", "d"]).round(4)
    species = np.where(iris["a"] > 0.3, "setosa", np.where(iris["b"] > 0, "virginica", "other"))
    boosted = LGBMClassifier(n_estimators=30, verbose=-1).fit(iris, species)
    with mlflow.start_run():
        mlflow.lightgbm.log_model(
            boosted,
            name="model",
            registered_model_name=BOOSTED,
            signature=infer_signature(iris, boosted.predict(iris)),
            pip_requirements=["lightgbm"],
        )
    client = MlflowClient()
    for name in (PIPELINE, LABELLER, BOOSTED):
        client.set_registered_model_alias(name, "champion", "1")
    return Registered(frame, pipeline, labeller_frame, labeller, iris, boosted)


@pytest.fixture(scope="module")
def served(
    serving_stack: Stack,
    registered: Registered,
    tmp_path_factory: pytest.TempPathFactory,
    broker: EmbeddedBroker,
) -> Iterator[ServedApp]:
    settings = serving_settings(
        serving_stack,
        tmp_path_factory.mktemp("serving"),
        broker.bootstrap_servers,
        models=f"{PIPELINE},{LABELLER},{BOOSTED}",
        # Loading through mlflow.pyfunc runs the model's code: an explicit opt-in.
        unpickle_models=[LABELLER, BOOSTED],
        reconcile_interval_seconds=1,
    )
    server = start_serving(settings)
    try:
        yield server
    finally:
        server.stop()


async def ready(url: str) -> bool:
    async with httpx.AsyncClient(headers=auth_headers()) as client:
        return (await client.get(f"{url}/v2/health/ready")).status_code == 200


@pytest.fixture
async def client(served: ServedApp) -> Any:
    await eventually(lambda: ready(served.url), timeout=90)
    async with httpx.AsyncClient(headers=auth_headers(), base_url=served.url, timeout=30) as http:
        yield http


V2_DATATYPES = {"object": "BYTES", "float64": "FP64", "int64": "INT64", "bool": "BOOL"}


def v2_columns(frame: pd.DataFrame, **extra: Any) -> dict[str, Any]:
    """One V2 input per column, typed as the frame's column is."""
    inputs = []
    for name in frame.columns:
        datatype = V2_DATATYPES[str(frame[name].dtype)]
        tensor: dict[str, Any] = {
            "name": name,
            "shape": [len(frame)],
            "datatype": datatype,
            "data": frame[name].tolist(),
        }
        if datatype == "BYTES":
            tensor["parameters"] = {"content_type": "str"}
        inputs.append(tensor)
    return {"inputs": inputs, **extra}


async def every_protocol(
    client: httpx.AsyncClient, name: str, frame: pd.DataFrame
) -> list[httpx.Response]:
    """The same rows through V2 and every /invocations format."""
    rows = frame.to_dict(orient="split")
    return [
        await client.post(f"/v2/models/{name}/infer", json=v2_columns(frame)),
        await client.post(
            f"/invocations?model={name}",
            json={"dataframe_split": {"columns": rows["columns"], "data": rows["data"]}},
        ),
        await client.post(
            f"/models/{name}/invocations",
            json={"dataframe_records": frame.to_dict(orient="records")},
        ),
        await client.post(
            f"/invocations?model={name}", json={"instances": frame.to_dict(orient="records")}
        ),
        await client.post(
            f"/invocations?model={name}", json={"inputs": frame.to_dict(orient="list")}
        ),
        await client.post(
            f"/invocations?model={name}",
            content=frame.to_csv(index=False),
            headers={"Content-Type": "text/csv"},
        ),
    ]


def answered(response: httpx.Response) -> list[Any]:
    assert response.status_code == 200, response.text
    body = response.json()
    if "outputs" in body:
        (output,) = body["outputs"]
        return list(output["data"])
    return list(body["predictions"])


async def test_a_pipeline_over_a_string_column_answers_as_in_process_on_both_protocols(
    client: httpx.AsyncClient, registered: Registered
) -> None:
    frame = registered.frame.head(40)
    expected = registered.pipeline.predict(frame).tolist()
    assert set(expected) == {"buy", "skip"}

    responses = await every_protocol(client, PIPELINE, frame)

    for response in responses:
        assert answered(response) == expected
    v2 = responses[0].json()["outputs"][0]
    assert (v2["datatype"], v2["parameters"]) == ("BYTES", {"content_type": "str"})
    metadata = (await client.get(f"/v2/models/{PIPELINE}")).json()
    assert metadata["parameters"]["loader"] == "skops"
    assert [(i["name"], i["datatype"]) for i in metadata["inputs"]] == [
        ("city", "BYTES"),
        ("income", "FP64"),
        ("visits", "INT64"),
    ]
    assert metadata["outputs"][0]["datatype"] == "BYTES"


async def test_probabilities_come_back_when_asked_as_predict_proba(
    client: httpx.AsyncClient, registered: Registered
) -> None:
    frame = registered.frame.head(10)
    expected = registered.pipeline.predict_proba(frame)

    v2 = await client.post(
        f"/v2/models/{PIPELINE}/infer",
        json=v2_columns(frame, outputs=[{"name": "predict"}, {"name": "predict_proba"}]),
    )
    invocations = await client.post(
        f"/invocations?model={PIPELINE}",
        json={
            "dataframe_records": frame.to_dict(orient="records"),
            "params": {"predict_method": "predict_proba"},
        },
    )

    assert v2.status_code == 200, v2.text
    label, proba = v2.json()["outputs"]
    assert label["data"] == registered.pipeline.predict(frame).tolist()
    assert proba["shape"] == [10, 2]
    np.testing.assert_allclose(np.reshape(proba["data"], (10, 2)), expected)
    assert invocations.status_code == 200, invocations.text
    np.testing.assert_allclose(invocations.json()["predictions"], expected)


async def test_a_custom_python_model_answers_its_strings_through_pyfunc(
    client: httpx.AsyncClient, registered: Registered
) -> None:
    frame = registered.labeller_frame.head(25)
    expected = registered.labeller.predict(None, frame)

    responses = await every_protocol(client, LABELLER, frame)

    for response in responses:
        assert answered(response) == expected
    metadata = (await client.get(f"/v2/models/{LABELLER}")).json()
    assert metadata["parameters"]["loader"] == "mlflow.pyfunc"
    assert metadata["outputs"] == [
        {
            "name": "predict",
            "datatype": "BYTES",
            "shape": [-1],
            "parameters": {"content_type": "str"},
        }
    ]
    no_proba = await client.post(
        f"/v2/models/{LABELLER}/infer", json=v2_columns(frame, outputs=[{"name": "predict_proba"}])
    )
    assert no_proba.status_code == 400
    assert "offers no predict_proba" in no_proba.json()["error"]


async def test_a_lightgbm_classifier_answers_labels_and_probabilities_through_pyfunc(
    client: httpx.AsyncClient, registered: Registered
) -> None:
    frame = registered.iris.head(30)
    expected = np.asarray(registered.boosted.predict(frame)).tolist()
    rows = frame.to_numpy().tolist()

    tensor = await client.post(
        f"/v2/models/{BOOSTED}/infer",
        json={
            "inputs": [
                {
                    "name": "x",
                    "shape": [len(rows), 4],
                    "datatype": "FP64",
                    "data": [x for row in rows for x in row],
                }
            ],
            "outputs": [{"name": "predict"}, {"name": "predict_proba"}],
        },
    )
    split = await client.post(
        f"/invocations?model={BOOSTED}",
        json={"dataframe_split": {"columns": list(frame.columns), "data": rows}},
    )
    proba = await client.post(
        f"/invocations?model={BOOSTED}",
        json={"inputs": rows, "params": {"predict_method": "predict_proba"}},
    )
    metadata = (await client.get(f"/v2/models/{BOOSTED}")).json()

    assert tensor.status_code == 200, tensor.text
    label, probabilities = tensor.json()["outputs"]
    assert label["data"] == expected
    np.testing.assert_allclose(
        np.reshape(probabilities["data"], probabilities["shape"]),
        registered.boosted.predict_proba(frame),
    )
    assert answered(split) == expected
    np.testing.assert_allclose(proba.json()["predictions"], registered.boosted.predict_proba(frame))
    assert metadata["parameters"]["loader"] == "mlflow.pyfunc"
    assert metadata["outputs"][1]["parameters"]["classes"] == list(registered.boosted.classes_)


BAD_V2 = [
    ("visits", [3, "many"], "column 'visits', row 1: 'many' is not a long"),
    ("income", [1.5, None], "column 'income', row 1: null"),
    ("city", None, "missing column(s) 'city'"),
    ("height", [1.8, 1.7], "unknown column(s) 'height'"),
]


@pytest.mark.parametrize(
    ("column", "values", "message"), BAD_V2, ids=["wrong-type", "null", "missing", "extra"]
)
async def test_a_v2_request_that_does_not_fit_is_a_400_naming_the_column_and_row(
    client: httpx.AsyncClient,
    registered: Registered,
    column: str,
    values: list[Any] | None,
    message: str,
) -> None:
    body = v2_columns(registered.frame.head(2), id=f"bad-v2-{column}")
    body["inputs"] = [t for t in body["inputs"] if t["name"] != column]
    if values is not None:
        datatype = "INT64" if column == "visits" else "FP64"
        body["inputs"].append({"name": column, "shape": [2], "datatype": datatype, "data": values})

    response = await client.post(f"/v2/models/{PIPELINE}/infer", json=body)

    assert response.status_code == 400
    assert message in response.json()["error"]


BAD_MLFLOW = [
    ({"visits": "many"}, "column 'visits', row 1: 'many' is not a long"),
    ({"income": None}, "column 'income', row 1: null"),
    ({"city": ...}, "missing column(s) 'city'"),
    ({"height": 1.8}, "unknown column(s) 'height'"),
]


@pytest.mark.parametrize(
    ("change", "message"), BAD_MLFLOW, ids=["wrong-type", "null", "missing", "extra"]
)
async def test_an_invocation_that_does_not_fit_is_a_400_naming_the_column_and_row(
    client: httpx.AsyncClient, registered: Registered, change: dict[str, Any], message: str
) -> None:
    records = registered.frame.head(2).to_dict(orient="records")
    for name, value in change.items():
        if value is ...:
            for record in records:
                record.pop(name)
        else:
            records[1][name] = value

    response = await client.post(
        f"/invocations?model={PIPELINE}", json={"dataframe_records": records}
    )
    csv = registered.frame.head(2).assign(visits=["3", "many"]).to_csv(index=False)
    as_csv = await client.post(
        f"/invocations?model={PIPELINE}", content=csv, headers={"Content-Type": "text/csv"}
    )

    assert response.status_code == 400
    assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert message in response.json()["message"]
    assert as_csv.status_code == 400
    assert "column 'visits', row 1: 'many' is not a long" in as_csv.json()["message"]


def prediction_of(request_ids: set[str]) -> Any:
    def ours(record: Any) -> bool:
        try:
            event = from_record(record.value, list(record.headers))
        except EnvelopeError:
            return False
        return bool(event.data.request_id in request_ids)

    return ours


async def test_typed_values_are_logged_and_a_refused_request_is_not(
    client: httpx.AsyncClient, registered: Registered, broker: EmbeddedBroker
) -> None:
    frame = registered.frame.head(2)
    refused = v2_columns(frame, id="typed-refused")
    refused["inputs"][2]["data"] = [1, "many"]
    bad = await client.post(f"/v2/models/{PIPELINE}/infer", json=refused)
    good = await client.post(f"/v2/models/{PIPELINE}/infer", json=v2_columns(frame, id="typed-ok"))
    assert bad.status_code == 400
    assert good.status_code == 200, good.text

    # The good request was sent after the refused one: once its record is there, a
    # record of the refused one would be too.
    records = await read_records(
        broker.bootstrap_servers,
        TOPICS["predictions"].name,
        prediction_of({"typed-ok", "typed-refused"}),
        expected=1,
        timeout=30,
    )
    await_more = await read_records(
        broker.bootstrap_servers,
        TOPICS["predictions"].name,
        prediction_of({"typed-refused"}),
        expected=1,
        timeout=2,
    )

    assert len(records) == 1
    assert await_more == []
    logged: serving_events.PredictionLogged = from_record(
        records[0].value, list(records[0].headers)
    ).data
    assert logged.request_id == "typed-ok"
    assert [record_to_dict(r) for r in logged.inputs] == frame.to_dict(orient="records")
    assert [r.fields["city"].WhichOneof("kind") for r in logged.inputs] == ["string_value"] * 2
    assert [r.fields["visits"].WhichOneof("kind") for r in logged.inputs] == ["int64_value"] * 2
    assert [record_to_dict(o)["prediction"] for o in logged.outputs] == (
        registered.pipeline.predict(frame).tolist()
    )


async def test_a_version_whose_package_is_missing_never_swaps_in(
    client: httpx.AsyncClient, registered: Registered, tmp_path: Path
) -> None:
    with mlflow.start_run():
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=NeedsAPackage(),
            registered_model_name=LABELLER,
            signature=infer_signature(
                registered.labeller_frame,
                registered.labeller.predict(None, registered.labeller_frame.head(3)),
            ),
            pip_requirements=["mlflow-skinny", "driftloop-missing-dependency==0.1"],
        )
    broken = str(info.registered_model_version)
    frame = registered.labeller_frame.head(3)
    mlflow_client = MlflowClient()
    mlflow_client.set_registered_model_alias(LABELLER, "champion", broken)
    try:

        async def refused() -> str | None:
            details = (await client.get("/readyz")).json()["details"]["models"]
            failure = details.get(f"{LABELLER}@champion load failure")
            return str(failure) if failure and f"version {broken}" in failure else None

        failure = await eventually(refused, timeout=60)
        assert "'driftloop_missing_dependency'" in failure
        assert "driftloop-missing-dependency==0.1" in failure
        assert "still serving version 1" in failure
        answer = await client.post(f"/v2/models/{LABELLER}/infer", json=v2_columns(frame))
        assert answer.status_code == 200, answer.text
        assert answer.json()["model_version"] == "1"
        assert answer.json()["outputs"][0]["data"] == registered.labeller.predict(None, frame)
        metrics = (await client.get("/metrics")).text
        assert (
            f'driftloop_serving_model_load_failures_total{{alias="champion",model="{LABELLER}"}}'
            in metrics
        )
    finally:
        mlflow_client.set_registered_model_alias(LABELLER, "champion", "1")
