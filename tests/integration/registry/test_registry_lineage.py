"""The lineage log on the real broker: alerts and jobs consumed, alias moves recorded, one chain.

The monitor's and the trainer's events are published here as those services
publish them (the events library's envelope on their topics); the registry's own
changes go through the mlflow client.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

import httpx
import mlflow
import pytest
from mlflow import MlflowClient
from sklearn.datasets import load_iris  # type: ignore[import-untyped]
from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped]
from typer.testing import CliRunner

from driftloop.common.v1.common_pb2 import EventRef, ModelRef, Window
from driftloop.monitor.v1 import events_pb2 as monitor
from driftloop.trainer.v1 import events_pb2 as trainer
from driftloop_bus.embedded import EmbeddedBroker
from driftloop_bus.publisher import Publisher
from driftloop_cli.main import app as cli
from driftloop_events.envelope import (
    JSON,
    PROTOBUF,
    CloudEvent,
    KafkaRecord,
    new_event_id,
    to_record,
)
from driftloop_kit.testing import auth_headers
from tests.fakes.common import unique

from ..bus.helpers import eventually, read_topic
from ..stack import Stack

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def broker() -> Iterator[EmbeddedBroker]:
    """This module's own broker: the malformed records it sends to other services'
    topics must not reach the modules that run after it on the same test process."""
    with EmbeddedBroker() as running:
        yield running


LINEAGE = "/api/2.0/driftloop/lineage"
ALIAS = "/api/2.0/mlflow/registered-models/alias"


def register(name: str, **tags: str) -> str:
    """Log and register an iris model from a run tagged ``tags``; the run's id."""
    features, labels = load_iris(return_X_y=True)
    with mlflow.start_run() as run:
        mlflow.set_tags(tags)
        mlflow.log_param("C", "1.0")
        mlflow.log_metric("accuracy", 0.96)
        mlflow.sklearn.log_model(
            LogisticRegression(max_iter=200).fit(features, labels),
            name="model",
            registered_model_name=name,
            pip_requirements=["scikit-learn"],
        )
    return str(run.info.run_id)


def drift(name: str, version: int) -> monitor.DriftDetected:
    columns = ["petal_width", "petal_length", "sepal_length", "sepal_width"]
    return monitor.DriftDetected(
        model=ModelRef(name=name, version=version),
        window=Window(id=f"{name}/{version}/w1", rows=500),
        columns=[
            monitor.ColumnDrift(column=c, stattest="ks", score=0.01, threshold=0.05, drifted=i < 3)
            for i, c in enumerate(columns)
        ],
        drift_share=0.75,
        dataset_drift_threshold=0.5,
        report_id=f"rep-{version}",
        report_url=f"http://monitor:8006/reports/rep-{version}",
    )


def requested(name: str, job: str, trigger: CloudEvent[Any]) -> trainer.TrainingRequested:
    return trainer.TrainingRequested(
        job_id=job,
        model_name=name,
        trigger=trainer.Trigger(
            kind=trainer.TRIGGER_KIND_DRIFT,
            event=EventRef(id=trigger.id, type=trigger.type, source=trigger.source),
            reason="3 of 4 columns drifted",
        ),
        requested_by="trainer-policy",
    )


async def publish(
    bootstrap: str, *events: CloudEvent[Any] | KafkaRecord, json_: bool = False
) -> None:
    """Publish in order, each acknowledged before the next is sent."""
    publisher = Publisher(bootstrap)
    await publisher.start()
    try:
        for item in events:
            record = (
                item
                if isinstance(item, KafkaRecord)
                else to_record(item, content_type=JSON if json_ else PROTOBUF)
            )
            await (await publisher.send_record(record))
    finally:
        await publisher.stop()


async def lineage(url: str, **params: str) -> httpx.Response:
    async with httpx.AsyncClient(headers=auth_headers(), base_url=url, timeout=30) as client:
        return await client.get(LINEAGE, params=params)


async def events_until(url: str, *wanted: str, **params: str) -> list[dict[str, Any]]:
    """The lineage events once every id in ``wanted`` is among them.

    Events of one model on one topic arrive in order; across topics, in any order.
    """

    async def probe() -> list[dict[str, Any]] | None:
        found: list[dict[str, Any]] = (await lineage(url, **params)).json()["events"]
        return found if set(wanted) <= set(ids(found)) else None

    result: list[dict[str, Any]] = await eventually(probe, timeout=60)
    return result


def ids(events: Sequence[dict[str, Any]]) -> list[str]:
    return [e["id"] for e in events]


async def test_a_version_shows_the_drift_and_job_that_made_it_and_what_followed(
    mlflow_at: Stack, broker: EmbeddedBroker
) -> None:
    url, bootstrap = mlflow_at.registry_url, broker.bootstrap_servers
    name = unique("lineage")
    client = MlflowClient()
    register(name)
    client.set_registered_model_alias(name, "champion", "1")

    # The monitor sees drift on v1 (as JSON, as a producer in another language might);
    # the trainer starts a job for it.
    drift_1 = CloudEvent.new(drift(name, 1))
    await publish(bootstrap, drift_1, json_=True)
    job = unique("job")
    request = CloudEvent.new(requested(name, job, drift_1))
    started = CloudEvent.new(trainer.TrainingStarted(job_id=job, model_name=name, attempt=1))
    await publish(bootstrap, request, started)
    # The job registers v2 and, once it wins the evaluation, moves the champion to it.
    run_id = register(
        name,
        **{
            "driftloop.training_job_id": job,
            "driftloop.trigger.event_id": drift_1.id,
            "driftloop.trigger.event_type": drift_1.type,
            "driftloop.feature_views": "iris_features",
        },
    )
    done_id = new_event_id()  # the alias move names it as its cause before it is published
    async with httpx.AsyncClient(headers=auth_headers(), base_url=url) as http:
        cause = {"id": done_id, "type": "driftloop.trainer.training.completed"}
        body = {"name": name, "alias": "champion", "version": "2", "cause": cause}
        (await http.post(ALIAS, json=body)).raise_for_status()
    done = CloudEvent.new(
        trainer.TrainingCompleted(
            job_id=job,
            model_name=name,
            run_id=run_id,
            model_version=2,
            evaluation=trainer.EvaluationResult(
                passed=True, metric="accuracy", challenger_score=0.96, champion_score=0.9
            ),
            promoted=True,
            alias="champion",
        ),
        id=done_id,
    )
    await publish(bootstrap, done)
    # Drift on v2 as well, and a retraining that fails.
    drift_2 = CloudEvent.new(drift(name, 2))
    retrain = unique("job")
    retrain_request = CloudEvent.new(requested(name, retrain, drift_2))
    failed = CloudEvent.new(
        trainer.TrainingFailed(
            job_id=retrain,
            model_name=name,
            stage=trainer.TRAINING_STAGE_DATA,
            error="feature view 'iris_features' not found",
            error_type="FeatureViewNotFoundError",
            attempt=1,
        )
    )
    await publish(bootstrap, drift_2, retrain_request, failed)

    chain = await events_until(
        url, drift_1.id, done.id, drift_2.id, failed.id, name=name, version="2"
    )
    answer = (await lineage(url, name=name, version="2")).json()
    history = (await lineage(url, name=name)).json()["events"]

    v2_created = next(
        e for e in history if e["type"].endswith("model_version.created") and e["version"] == "2"
    )
    moves = [e for e in history if e["type"] == "driftloop.registry.alias.set"]
    assert [
        (e["summary"]["alias"], e["summary"].get("previous_version"), e["version"]) for e in moves
    ] == [
        ("champion", None, "1"),
        ("champion", 1, "2"),
    ]
    assert [(e["id"], e["role"]) for e in chain] == [
        (drift_1.id, "trigger"),
        (request.id, "training"),
        (started.id, "training"),
        (v2_created["id"], "registered"),
        (moves[1]["id"], "alias"),
        (done.id, "training"),
        (drift_2.id, "monitoring"),
        (retrain_request.id, "retrain"),
        (failed.id, "retrain"),
    ]
    assert [e["time"] for e in chain] == sorted(e["time"] for e in chain)
    assert chain[0]["summary"]["drifted_columns"] == ["petal_width", "petal_length", "sepal_length"]
    assert chain[0]["summary"]["report_url"] == "http://monitor:8006/reports/rep-1"
    assert chain[0]["source"] == "/driftloop/monitor"
    assert chain[4]["summary"]["cause_event_id"] == done.id
    assert chain[5]["summary"]["evaluation"]["champion_score"] == 0.9

    # The version's lineage as model-versions/get has it, and who holds it now.
    assert (answer["name"], answer["version"]) == (name, "2")
    assert answer["aliases"] == [{"alias": "champion", "version": "2"}]
    assert answer["lineage"]["run_id"] == run_id
    assert answer["lineage"]["training_job_id"] == job
    assert answer["lineage"]["triggering_event"]["id"] == drift_1.id
    assert answer["lineage"]["feature_views"] == ["iris_features"]
    assert answer["lineage"]["metrics"] == {"accuracy": 0.96}
    # By alias: the same chain.
    by_alias = (await lineage(url, name=name, alias="champion")).json()
    assert (by_alias["version"], by_alias["alias"]) == ("2", "champion")
    assert ids(by_alias["events"]) == ids(chain)
    # The model's whole log: everything, oldest first, the v1 side included.
    assert ids(history)[:3] == [history[0]["id"], moves[0]["id"], drift_1.id]
    assert history[0]["type"] == "driftloop.registry.model_version.created"
    assert len(history) == 11
    assert "role" not in history[0]
    # v1's chain ends with the version that replaced it.
    first = (await lineage(url, name=name, version="1")).json()["events"]
    assert [e["role"] for e in first] == [
        "registered",
        "alias",
        "monitoring",
        "retrain",
        "retrain",
        "next_version",
        "alias",
        "retrain",
    ]


async def test_an_event_delivered_twice_is_logged_once(
    mlflow_at: Stack, broker: EmbeddedBroker
) -> None:
    name = unique("redelivered")
    MlflowClient().create_registered_model(name)
    started = CloudEvent.new(trainer.TrainingStarted(job_id="job-1", model_name=name, attempt=1))
    after = CloudEvent.new(trainer.TrainingStarted(job_id="job-2", model_name=name, attempt=1))
    # Same key, same partition: once `after` is in, both copies have been handled.
    await publish(broker.bootstrap_servers, started, started, after)

    events = await events_until(mlflow_at.registry_url, after.id, name=name)
    assert ids(events) == [started.id, after.id]


async def test_a_renamed_model_keeps_its_log_and_a_deleted_one_leaves_none_behind(
    mlflow_at: Stack, broker: EmbeddedBroker
) -> None:
    url = mlflow_at.registry_url
    name, new_name = unique("renamed"), unique("renamed")
    client = MlflowClient()
    client.create_registered_model(name)
    started = CloudEvent.new(trainer.TrainingStarted(job_id="job-1", model_name=name, attempt=1))
    await publish(broker.bootstrap_servers, started)
    await events_until(url, started.id, name=name)

    client.rename_registered_model(name, new_name)
    assert ids((await lineage(url, name=new_name)).json()["events"]) == [started.id]
    client.delete_registered_model(new_name)
    client.create_registered_model(new_name)
    assert (await lineage(url, name=new_name)).json().get("events", []) == []


async def test_a_malformed_event_goes_to_the_dead_letter_topic_and_changes_nothing(
    mlflow_at: Stack, broker: EmbeddedBroker
) -> None:
    name = unique("malformed")
    MlflowClient().create_registered_model(name)
    bad_id = f"bad-{uuid.uuid4().hex}"
    undecodable = KafkaRecord(
        topic="trainer.jobs",
        key=name.encode(),
        value=b"\xff\x00 not protobuf",
        headers=[
            ("ce_specversion", b"1.0"),
            ("ce_id", bad_id.encode()),
            ("ce_source", b"/driftloop/trainer"),
            ("ce_type", b"driftloop.trainer.training.started"),
            ("content-type", b"application/protobuf"),
        ],
    )
    no_job = CloudEvent.new(trainer.TrainingStarted(job_id="", model_name=name, attempt=1))
    after = CloudEvent.new(trainer.TrainingStarted(job_id="job-1", model_name=name, attempt=1))
    await publish(broker.bootstrap_servers, undecodable, no_job, after)

    events = await events_until(mlflow_at.registry_url, after.id, name=name)
    assert ids(events) == [after.id]

    async def dead_letters() -> dict[str, dict[str, bytes]] | None:
        records = await read_topic(
            broker.bootstrap_servers, "trainer.jobs.dlq", expected=10_000, timeout=2
        )
        found = {
            headers["ce_id"].decode(): headers
            for headers in (dict(r.headers) for r in records)
            if headers.get("dlq.consumer.group") == b"driftloop-registry"
        }
        return found if {bad_id, no_job.id} <= set(found) else None

    found = await eventually(dead_letters, timeout=30)
    assert b"UndecodablePayload" in found[bad_id]["dlq.error"]
    assert b"has no job_id" in found[no_job.id]["dlq.error"]


async def test_unknown_names_and_bad_arguments_get_the_registrys_json_errors(
    mlflow_at: Stack,
) -> None:
    url = mlflow_at.registry_url
    name = unique("errors")
    MlflowClient().create_registered_model(name)

    cases = [
        ({"name": "no-such-model"}, 404, "RESOURCE_DOES_NOT_EXIST", "name=no-such-model not found"),
        ({"name": name, "version": "3"}, 404, "RESOURCE_DOES_NOT_EXIST", "version=3) not found"),
        ({"name": name, "alias": "champion"}, 404, "RESOURCE_DOES_NOT_EXIST", "alias champion"),
        ({"name": name, "version": "x"}, 400, "INVALID_PARAMETER_VALUE", "must be an integer"),
        ({"name": name, "version": "1", "alias": "a"}, 400, "INVALID_PARAMETER_VALUE", "either"),
        ({}, 400, "INVALID_PARAMETER_VALUE", "'name'"),
    ]
    for params, status, code, message in cases:
        response = await lineage(url, **params)
        assert response.status_code == status, params
        assert response.json()["error_code"] == code
        assert message in response.json()["message"]
    empty = (await lineage(url, name=name)).json()
    assert (empty["name"], empty.get("events", [])) == (name, [])

    async with httpx.AsyncClient(headers=auth_headers(), base_url=url) as http:
        schema = (await http.get("/openapi.json")).json()
    assert "lineage" in schema["paths"][LINEAGE]["get"]["tags"]


def test_the_lineage_command_prints_a_versions_timeline_from_a_running_registry(
    mlflow_at: Stack, broker: EmbeddedBroker
) -> None:
    url = mlflow_at.registry_url
    name = unique("cli")
    register(name)
    MlflowClient().set_registered_model_alias(name, "champion", "1")
    alert = CloudEvent.new(drift(name, 1))
    asyncio.run(publish(broker.bootstrap_servers, alert))
    asyncio.run(events_until(url, alert.id, name=name))
    runner = CliRunner()

    shown = runner.invoke(cli, ["lineage", f"{name}@champion", "--registry-url", url])
    assert shown.exit_code == 0, shown.output
    lines = shown.output.splitlines()
    assert lines[0] == f"{name} v1 (@champion)"
    timeline = [line for line in lines if line[:4].isdigit()]
    assert [line.split()[1] for line in timeline] == [
        "model_version.created",
        "alias.set",
        "drift.detected",
    ]
    assert timeline[2].split()[2] == alert.id
    assert "v1: 3/4 columns drifted (share 0.75)" in timeline[2]
    assert "report: http://monitor:8006/reports/rep-1" in timeline[2]

    as_json = runner.invoke(cli, ["lineage", f"{name}/1", "--json", "--registry-url", url])
    assert as_json.exit_code == 0, as_json.output
    assert json.loads(as_json.output)["events"][-1]["id"] == alert.id

    unknown = runner.invoke(cli, ["lineage", "no-such-model", "--registry-url", url])
    assert unknown.exit_code == 1
    assert "Registered Model with name=no-such-model not found" in unknown.output
    reserved = runner.invoke(cli, ["lineage", f"{name}@latest", "--registry-url", url])
    assert reserved.exit_code == 2
    assert "reserved" in reserved.output
