"""The console's pages against real upstreams: tracking and registry served on free ports
(the mlflow client fills them), the trainer, monitor and serving not running, so their
panels say so while the rest of each page renders. The live feed reads the real broker."""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import mlflow
import pytest
from aiokafka import AIOKafkaProducer
from mlflow import MlflowClient

from driftloop_bus.embedded import EmbeddedBroker, free_port
from driftloop_bus.topics import ensure_topics
from driftloop_console.entrypoints.app import create_app
from driftloop_console.settings import ConsoleSettings
from driftloop_events.catalog import spec_for
from driftloop_events.envelope import CloudEvent, to_record
from driftloop_events.topics import TOPICS
from driftloop_kit.auth import Role
from driftloop_kit.testing import ServedApp, app_client, auth_headers

from ..stack import Stack, reset_mlflow_uris, running_stack

pytestmark = pytest.mark.integration

MODEL = "console-iris"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, broker: EmbeddedBroker) -> Iterator[Stack]:
    """Tracking and registry with one experiment of three runs and a registered champion."""
    with running_stack(
        home=tmp_path_factory.mktemp("home"), bootstrap_servers=broker.bootstrap_servers
    ) as running:
        mlflow.set_tracking_uri(running.tracking_url)
        mlflow.set_registry_uri(running.registry_url)
        try:
            mlflow.set_experiment("console-runs")
            for index, accuracy in enumerate((0.7, 0.8, 0.95)):
                with mlflow.start_run(run_name=f"run-{index}"):
                    mlflow.log_param("estimator", "forest" if index else "tree")
                    for step in range(3):
                        mlflow.log_metric("accuracy", accuracy - 0.1 * (2 - step), step=step)
                    mlflow.log_metric("loss", 1 - accuracy)
                    mlflow.log_text("flavors: {}\n", "model/MLmodel")  # files to register
            client = MlflowClient()
            client.create_registered_model(MODEL)
            run = mlflow.search_runs(order_by=["metrics.accuracy DESC"], output_format="list")[0]
            client.create_model_version(MODEL, f"runs:/{run.info.run_id}/model", run.info.run_id)
            client.set_registered_model_alias(MODEL, "champion", "1")
        finally:
            reset_mlflow_uris()
        yield running


def console_settings(
    stack: Stack, broker: EmbeddedBroker, home: Path, *, actions_enabled: bool = False
) -> ConsoleSettings:
    closed = free_port()  # nothing listens there: the trainer, monitor and serving are down
    return ConsoleSettings(
        home=home,
        port=free_port(),
        kafka_bootstrap_servers=broker.bootstrap_servers,
        auth_url=stack.tracking_url,
        tracking_url=stack.tracking_url,
        registry_url=stack.registry_url,
        trainer_url=f"http://127.0.0.1:{closed}",
        monitor_url=f"http://127.0.0.1:{closed}",
        serving_url=f"http://127.0.0.1:{closed}",
        upstream_timeout_seconds=2.0,
        actions_enabled=actions_enabled,
    )


@pytest.fixture
async def console(
    stack: Stack, broker: EmbeddedBroker, tmp_path: Path
) -> AsyncIterator[httpx.AsyncClient]:
    """The console in-process (its lifespan on), as a reader, with actions on."""
    app = create_app(console_settings(stack, broker, tmp_path, actions_enabled=True))
    async with app_client(app, role=Role.READER) as client:
        yield client


async def test_the_overview_shows_the_champion_and_names_each_upstream_that_did_not_answer(
    console: httpx.AsyncClient,
) -> None:
    started = time.perf_counter()
    answer = await console.get("/")
    assert answer.status_code == 200
    page = answer.text
    card = page[page.index(f'data-model="{MODEL}"') :]
    champion = re.search(r'data-testid="alias-champion"[^>]*data-version="(\d+)"', card)
    assert champion is not None
    assert champion.group(1) == "1"
    assert f'href="/models/{MODEL}/versions/1"' in card
    # The trainer is down: its panels say who, where and what; serving's too.
    trainer = console_app_url(console, "trainer")
    assert f"trainer at {trainer}/models/{MODEL}/alias-moves did not answer" in page
    assert "serving at " in page
    assert 'id="event-feed"' in page
    # Failing upstreams fail fast: connection refused, not a timeout each.
    assert time.perf_counter() - started < 2.0


def console_app_url(client: httpx.AsyncClient, service: str) -> str:
    transport = client._transport  # the ASGI transport's app
    app = transport.app  # type: ignore[attr-defined]
    return str(app.state.console.upstreams.urls[service])


async def test_the_model_page_lists_versions_and_shows_the_monitors_absence_on_its_panels(
    console: httpx.AsyncClient,
) -> None:
    page = (await console.get(f"/models/{MODEL}")).text
    assert re.search(r'<tr data-version="1">', page)
    assert "monitor at " in page
    assert "did not answer" in page
    version = await console.get(f"/models/{MODEL}/versions/1")
    assert version.status_code == 200
    assert "/runs/" in version.text


async def test_runs_are_searched_with_the_tracking_filter_grammar_and_compared_by_step(
    console: httpx.AsyncClient,
) -> None:
    experiments = (await console.get("/experiments")).text
    found = re.search(r'href="/experiments/(\d+)/runs">console-runs<', experiments)
    assert found is not None
    runs_url = f"/experiments/{found.group(1)}/runs"
    every = re.findall(r'<tr data-run="(\w+)"', (await console.get(runs_url)).text)
    assert len(every) == 3
    matching = (await console.get(runs_url, params={"filter": "metrics.accuracy > 0.75"})).text
    picked = re.findall(r'<tr data-run="(\w+)"', matching)
    assert len(picked) == 2
    bad = (await console.get(runs_url, params={"filter": "nonsense >>"})).text
    assert "tracking at " in bad
    assert "answered 400" in bad

    compare = await console.get("/runs/compare", params={"run_ids": ",".join(picked)})
    assert compare.status_code == 200
    assert 'id="metric-chart"' in compare.text
    block = re.search(r'<script type="application/json" id="metric-data">(.*?)</script>',
                      compare.text, re.S)  # fmt: skip
    assert block is not None
    data = json.loads(block.group(1))
    assert data["keys"] == ["accuracy", "loss"]
    assert {s["run_id"] for s in data["series"]["accuracy"]} == set(picked)
    assert [p["x"] for p in data["series"]["accuracy"][0]["points"]] == [0, 1, 2]

    refused = await console.get("/runs/compare", params={"run_ids": ",".join(["a"] * 11)})
    assert refused.status_code == 400


async def test_a_login_keeps_the_token_in_an_httponly_cookie_that_the_pages_then_read(
    stack: Stack, broker: EmbeddedBroker, tmp_path: Path
) -> None:
    app = create_app(console_settings(stack, broker, tmp_path))
    token = auth_headers(Role.READER, subject="alice")["Authorization"].split()[1]
    async with app_client(app, role=None) as browser:
        asked = await browser.get("/", headers={"Accept": "text/html"})
        assert asked.status_code == 401
        assert 'action="/login"' in asked.text
        refused = await browser.post("/login", data={"token": "not-a-token", "next": "/"},
                                     headers={"Accept": "text/html"})  # fmt: skip
        assert refused.status_code == 401
        logged = await browser.post("/login", data={"token": token, "next": f"/models/{MODEL}"})
        assert logged.status_code == 303
        assert logged.headers["location"] == f"/models/{MODEL}"
        cookie = logged.headers["set-cookie"].lower()
        assert "httponly" in cookie
        assert "samesite=strict" in cookie
        page = await browser.get("/")
        assert page.status_code == 200
        assert "alice (reader)" in page.text
        # Another site's form cannot use the cookie.
        forged = await browser.post("/logout", headers={"Origin": "http://evil.example"})
        assert forged.status_code == 403
        away = await browser.post("/login", data={"token": token, "next": "//evil.example/"})
        assert away.headers["location"] == "/"


async def test_an_action_goes_upstream_with_the_viewers_credential_and_its_refusal_shows(
    stack: Stack, console: httpx.AsyncClient
) -> None:
    form = {"model": MODEL, "alias": "challenger", "version": "1"}
    confirm = await console.post("/actions/alias", data=form)
    assert confirm.status_code == 200
    assert 'data-testid="confirm"' in confirm.text
    # A reader: the registry refuses, and the page says it did and why.
    refused = await console.post("/actions/alias", data={**form, "confirm": "yes"})
    assert refused.status_code == 403
    assert "Refused: your role does not allow this." in refused.text
    assert "registry at " in refused.text
    assert "this needs deployer" in refused.text
    # A deployer: the registry moves the alias, as that user.
    deployer = auth_headers(Role.DEPLOYER, subject="dora")
    done = await console.post("/actions/alias", data={**form, "confirm": "yes"}, headers=deployer)
    assert done.status_code == 200
    assert 'data-ok="true"' in done.text
    async with httpx.AsyncClient(base_url=stack.registry_url, headers=deployer) as registry:
        found = await registry.get(
            "/api/2.0/mlflow/registered-models/alias", params={"name": MODEL, "alias": "challenger"}
        )
    assert found.json()["model_version"]["version"] == "1"
    # The form is bounded and checked before anything is sent.
    bad = await console.post("/actions/alias", data={**form, "version": "two"})
    assert bad.status_code == 400


async def test_actions_are_off_unless_enabled(
    stack: Stack, broker: EmbeddedBroker, tmp_path: Path
) -> None:
    app = create_app(console_settings(stack, broker, tmp_path))
    async with app_client(app, role=Role.ADMIN) as client:
        page = await client.get(f"/models/{MODEL}")
        assert 'data-testid="actions"' not in page.text
        refused = await client.post("/actions/rollback", data={"model": MODEL, "confirm": "yes"})
        assert refused.status_code == 404


async def test_the_live_feed_streams_an_event_published_on_a_topic(
    stack: Stack, broker: EmbeddedBroker, tmp_path: Path
) -> None:
    await ensure_topics(broker.bootstrap_servers, [TOPICS["registry.models"]])
    settings = console_settings(stack, broker, tmp_path)
    app = create_app(settings)
    server = ServedApp(app, host="127.0.0.1", port=settings.port, name="console")
    server.start()
    try:
        deadline = time.monotonic() + 30
        while not app.state.feed.assigned.is_set():
            assert time.monotonic() < deadline, "the feed never read the topics"
            await asyncio.sleep(0.1)
        spec = spec_for("driftloop.registry.alias.set")
        event = CloudEvent.new(spec.example(), id=f"console-test-{uuid.uuid4().hex}")
        record = to_record(event)
        headers = auth_headers(Role.READER)
        async with (
            httpx.AsyncClient(base_url=server.url, headers=headers, timeout=10) as client,
            client.stream("GET", "/events/stream") as stream,
        ):
            assert stream.status_code == 200
            assert stream.headers["content-type"].startswith("text/event-stream")
            producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap_servers)
            await producer.start()
            try:
                sent = time.monotonic()
                await producer.send_and_wait(
                    record.topic, record.value, key=record.key, headers=list(record.headers)
                )
            finally:
                await producer.stop()
            received = None
            async for line in stream.aiter_lines():
                if line.startswith("data: ") and event.id in line:
                    received = json.loads(line[len("data: ") :])
                    break
            elapsed = time.monotonic() - sent
        assert received is not None
        assert received["type"] == "alias.set"
        assert received["topic"] == "registry.models"
        assert elapsed < 5.0, f"the event took {elapsed:.2f} s to reach the page"
    finally:
        server.stop()
