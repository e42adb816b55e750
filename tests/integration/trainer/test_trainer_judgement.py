"""The gate's judgement with pipelines that are not the reference one: a pipeline that
lies about its scores, the `driftloop init-pipeline` template, and a pipeline fed
poisoned labels, each run as a real job against real tracking and registry."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from driftloop_bus.embedded import EmbeddedBroker
from driftloop_trainer.domain.jobs import JobSpec, ModelConfig
from tests.fakes.common import unique

from ..stack import Stack, running_stack
from .conftest import eventually, running_trainer, wait_for_job
from .test_trainer_gate import OPEN, champion, events_of, reference_job, train

pytestmark = pytest.mark.integration

#: The repository's root: the test pipelines' package is found from it.
REPOSITORY = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, broker: EmbeddedBroker) -> Iterator[Stack]:
    home = tmp_path_factory.mktemp("stack")
    with running_stack(home=home, bootstrap_servers=broker.bootstrap_servers) as running:
        yield running


async def test_a_pipeline_that_reports_inflated_scores_is_judged_on_the_trainers_own_scoring(
    stack: Stack, tmp_path: Path, broker: EmbeddedBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The job's process imports the lying entry point from the repository.
    monkeypatch.setenv("PYTHONPATH", str(REPOSITORY))
    model = unique("iris-liar")
    async with running_trainer(
        home=tmp_path,
        database_url=f"sqlite:///{tmp_path / 'trainer.db'}",
        bootstrap_servers=broker.bootstrap_servers,
        tracking_url=stack.tracking_url,
        registry_url=stack.registry_url,
        models={model: reference_job()},
    ) as client:
        first = await train(client, model)
        assert first["promoted"] is True
        assert first["evaluation"]["scored_by"] == "trainer"
        # The model's document now names the lying pipeline (no restart).
        document = {
            "apiVersion": "driftloop/v1",
            "kind": "Model",
            "metadata": {"name": model},
            "spec": {
                "label": "species",
                "features": {
                    "features": [f"iris_features:{c}" for c in ("petal_length", "petal_width")]
                },
                "training": {
                    "entry_point": "tests.integration.trainer.lying_pipeline:train",
                    "labels_source": "builtin:iris",
                },
                "trigger": OPEN.model_dump(),
            },
        }
        applied = await client.put(f"/models/{model}", json=document)
        assert applied.status_code == 201, applied.text

        lied = await train(client, model)

        assert lied["status"] == "succeeded", lied.get("error")
        evaluation = lied["evaluation"]
        # The job's figures are kept, and did not decide.
        assert evaluation["reported_metrics"]["accuracy"] == 1.0
        assert evaluation["scored_by"] == "trainer"
        assert evaluation["challenger_score"] < 0.5  # one class of three
        assert evaluation["champion_score"] > 0.8
        assert evaluation["champion_version"] == 1
        assert evaluation["champion_only"] > evaluation["challenger_only"]
        assert evaluation["holdout_start"] <= evaluation["holdout_end"]
        assert evaluation["passed"] is False
        assert lied["promoted"] is False
        assert champion(stack, model) == 1


async def test_the_init_pipeline_template_trains_registers_and_is_judged_by_the_gate(
    stack: Stack, tmp_path: Path, broker: EmbeddedBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from driftloop_cli.main import app as cli

    folder = tmp_path / "code"
    written = CliRunner().invoke(cli, ["init-pipeline", "centroid_pipeline", "--dir", str(folder)])
    assert written.exit_code == 0, written.output
    # The job's process imports the generated module, as a user's image would.
    monkeypatch.setenv("PYTHONPATH", str(folder))
    model = unique("iris-template")
    spec = JobSpec(
        entry_point="centroid_pipeline:train",
        label="species",
        labels_source="builtin:iris",
        features=[f"iris_features:{c}" for c in ("petal_length", "petal_width")],
    )
    async with running_trainer(
        home=tmp_path,
        database_url=f"sqlite:///{tmp_path / 'trainer.db'}",
        bootstrap_servers=broker.bootstrap_servers,
        tracking_url=stack.tracking_url,
        registry_url=stack.registry_url,
        models={model: ModelConfig(policy=OPEN, job=spec)},
    ) as client:
        first = await train(client, model)
        second = await train(client, model)

    assert first["status"] == "succeeded", first.get("error")
    assert first["promoted"] is True  # no champion yet
    assert first["evaluation"]["scored_by"] == "trainer"
    # Petals separate the species: a constant model would score a third (holdouts are small).
    assert first["evaluation"]["challenger_score"] >= 0.8
    # The second is judged against the first on the trainer's holdout: a near tie keeps
    # the champion, as the paired test says.
    assert second["status"] == "succeeded", second.get("error")
    assert second["evaluation"]["champion_version"] == first["model_version"]
    assert second["evaluation"]["evaluation_rows"] >= 30


async def test_a_poisoned_label_episode_gets_one_job_a_refusal_an_escalation_and_no_more_jobs(
    stack: Stack, tmp_path: Path, broker: EmbeddedBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    from .conftest import drift_alert, publisher

    monkeypatch.setenv("PYTHONPATH", str(REPOSITORY))
    model = unique("iris-poisoned")
    async with running_trainer(
        home=tmp_path,
        database_url=f"sqlite:///{tmp_path / 'trainer.db'}",
        bootstrap_servers=broker.bootstrap_servers,
        tracking_url=stack.tracking_url,
        registry_url=stack.registry_url,
        models={model: reference_job()},
        schedule_check_seconds=0.5,
    ) as client:
        first = await train(client, model)
        assert first["promoted"] is True  # v1, on clean labels
        # From now on the model's labels come in poisoned; one refusal is enough to stop.
        document = {
            "apiVersion": "driftloop/v1",
            "kind": "Model",
            "metadata": {"name": model},
            "spec": {
                "label": "species",
                "features": {
                    "features": [f"iris_features:{c}" for c in ("petal_length", "petal_width")]
                },
                "training": {
                    "entry_point": "tests.integration.trainer.poisoned_pipeline:train",
                    "labels_source": "builtin:iris",
                },
                "trigger": {
                    **OPEN.model_dump(),
                    "max_refusals_per_episode": 1,
                    "retry_backoff_seconds": 0,
                },
            },
        }
        assert (await client.put(f"/models/{model}", json=document)).status_code == 201

        async def jobs() -> list[dict[str, Any]]:
            found: list[dict[str, Any]] = (
                await client.get("/jobs", params={"model": model})
            ).json()["jobs"]
            return found

        async with publisher(broker.bootstrap_servers) as bus:
            await bus.publish_and_wait(drift_alert(model, "w1", episode_id="ep-poison"))

            async def second_job() -> dict[str, Any] | None:
                found = [j for j in await jobs() if j["id"] != first["id"]]
                return found[0] if found else None

            job = await wait_for_job(client, (await eventually(second_job, timeout=60))["id"])
            assert job["status"] == "succeeded", job.get("error")
            assert job["promoted"] is False  # the gate refused the challenger of noise
            assert job["evaluation"]["scored_by"] == "trainer"

            async def escalated() -> list[Any] | None:
                found = await events_of(broker.bootstrap_servers, "trainer.jobs", model)
                hits = [e for e in found if e.type.endswith(".escalated")]
                return hits or None

            (escalation,) = await eventually(escalated, timeout=30)
            assert escalation.data.episode_id == "ep-poison"
            assert escalation.data.rule == "max_refusals_per_episode=1"
            assert list(escalation.data.job_ids) == [job["id"]]
            # The monitor keeps alerting on the episode: the trainer starts nothing more.
            for window in ("w2", "w3"):
                await bus.publish_and_wait(drift_alert(model, window, episode_id="ep-poison"))

            async def decided() -> list[dict[str, Any]] | None:
                found: list[dict[str, Any]] = (
                    await client.get("/decisions", params={"model": model})
                ).json()["decisions"]
                later = [d for d in found if d.get("episode_id") == "ep-poison"]
                return later if len(later) >= 4 else None  # started, escalated, w2, w3

            later = await eventually(decided, timeout=30)
            assert [d["outcome"] for d in later].count("started") == 1
            assert "escalated" in {d["outcome"] for d in later}
            await asyncio.sleep(2)  # the trainer's clock ticks meanwhile: nothing is retried
        assert [j["id"] for j in await jobs()] == [job["id"], first["id"]]
        assert champion(stack, model) == first["model_version"]
