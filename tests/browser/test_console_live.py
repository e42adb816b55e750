"""The console in a real browser, without the whole loop: its live feed on the real
broker, the login form, and pages whose upstreams are partly down.

The console runs in this process against the session's broker, a tracking and a
registry service (SQLite); the trainer, the monitor and serving are a port nobody
listens on. Seconds, not minutes: these run in ``make test``.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
import uuid
from collections.abc import Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pytest
from mlflow import MlflowClient

from driftloop.registry.v1 import events_pb2 as registry
from driftloop_bus.embedded import EmbeddedBroker, free_port
from driftloop_bus.publisher import Publisher
from driftloop_console.entrypoints.app import create_app
from driftloop_console.entrypoints.session import COOKIE
from driftloop_console.settings import ConsoleSettings
from driftloop_events.envelope import CloudEvent
from driftloop_events.topics import TOPICS
from driftloop_kit.testing import ServedApp
from tests.browser.conftest import OpenConsole
from tests.integration.stack import reset_mlflow_uris, running_stack

pytestmark = pytest.mark.integration

MODEL = "browser-iris"
#: Longest a published event may take to show in the live feed (issue 23).
FEED_SECONDS = 2.0


@dataclass
class HalfUp:
    """A console whose tracking and registry answer and whose trainer, monitor and
    serving do not."""

    console_url: str
    token: str
    dead_url: str
    broker: str
    champion: int


@pytest.fixture(scope="module")
def half_up(broker: EmbeddedBroker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[HalfUp]:
    home = tmp_path_factory.mktemp("console-half-up")
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    token = os.environ["MLFLOW_TRACKING_TOKEN"]  # an admin token (tests/conftest.py)
    with running_stack(home=home, bootstrap_servers=broker.bootstrap_servers) as stack:
        client = MlflowClient(tracking_uri=stack.tracking_url, registry_uri=stack.registry_url)
        experiment = client.create_experiment(f"browser-{uuid.uuid4().hex[:8]}")
        run = client.create_run(experiment)
        client.log_metric(run.info.run_id, "accuracy", 0.93)
        # The registry takes a version of an MLflow model only: an MLmodel file is enough.
        client.log_text(run.info.run_id, "flavors: {}\n", "model/MLmodel")
        client.set_terminated(run.info.run_id)
        client.create_registered_model(MODEL)
        version = client.create_model_version(
            MODEL, f"runs:/{run.info.run_id}/model", run_id=run.info.run_id
        )
        client.set_registered_model_alias(MODEL, "champion", version.version)
        reset_mlflow_uris()
        settings = ConsoleSettings(
            home=home,
            port=free_port(),
            kafka_bootstrap_servers=broker.bootstrap_servers,
            tracking_url=stack.tracking_url,
            registry_url=stack.registry_url,
            auth_url=stack.tracking_url,
            trainer_url=dead,
            monitor_url=dead,
            serving_url=dead,
            upstream_timeout_seconds=2.0,
        )
        console = ServedApp(create_app(settings), host=settings.host, port=settings.port)
        console.start()
        try:
            yield HalfUp(console.url, token, dead, broker.bootstrap_servers, int(version.version))
        finally:
            console.stop()


def _feed_ready(console_url: str, token: str, timeout: float = 30.0) -> None:
    """Wait until the console's feed has its partitions (it reads from the latest
    offsets: an event published before that would never show)."""
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answer = httpx.get(
            f"{console_url}/readyz", headers={"Authorization": f"Bearer {token}"}, timeout=2
        )
        if answer.status_code == 200:
            return
        time.sleep(0.2)
    raise AssertionError(f"the console's feed was not ready in {timeout} s: {answer.text}")


def _in_a_thread(call: Coroutine[Any, Any, str]) -> str:
    """Run ``call`` on an event loop of its own: Playwright's sync API holds this thread's."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, call).result(timeout=60)


async def _publish_alias_set(bootstrap: str, version: int) -> str:
    publisher = Publisher(bootstrap, topics=[TOPICS["registry.models"]])
    await publisher.start()
    try:
        event = CloudEvent.new(registry.AliasSet(name=MODEL, alias="challenger", version=version))
        await publisher.publish_and_wait(event, topic="registry.models")
    finally:
        await publisher.stop()
    return event.id


def test_an_event_published_during_the_test_shows_in_the_live_feed_within_2_s(
    half_up: HalfUp, open_console: OpenConsole
) -> None:
    _feed_ready(half_up.console_url, half_up.token)
    console = open_console(half_up.console_url)
    console.login(half_up.token)
    # The page follows the feed once its stream answered; then publish on the real broker.
    with console.page.expect_response(lambda r: r.url.endswith("/events/stream")) as stream:
        page = console.visit("/")
    assert stream.value.status == 200
    feed = page.get_by_test_id("event-feed")
    assert feed.get_attribute("data-stream") == "/events/stream"
    version = 4000 + int(time.time()) % 1000
    event_id = _in_a_thread(_publish_alias_set(half_up.broker, version))
    published = time.monotonic()
    item = feed.locator(f'li[data-id="{event_id}"]')
    item.wait_for(state="attached", timeout=FEED_SECONDS * 1000)
    shown = time.monotonic() - published
    assert (item.get_attribute("data-type") or "").endswith("alias.set")
    assert MODEL in item.inner_text()
    assert shown <= FEED_SECONDS, f"the event showed after {shown:.2f} s"
    # Its time shows in the viewer's zone (the browser's is Asia/Kolkata, UTC+05:30),
    # the UTC instant kept in the title.
    when = item.locator("time")
    assert when.get_attribute("data-local") == "true"
    assert re.search(r"GMT\+5:30|IST", when.inner_text()), when.inner_text()
    console.screenshot("feed-after-event")


def test_a_down_trainer_monitor_and_serving_show_on_their_panels_and_the_rest_works(
    half_up: HalfUp, open_console: OpenConsole
) -> None:
    console = open_console(half_up.console_url)
    console.login(half_up.token)
    page = console.visit("/")
    card = page.locator(f'[data-testid="model-card"][data-model="{MODEL}"]')
    # The registry answers: the champion is there, linked to its version's page.
    champion = card.get_by_test_id("alias-champion")
    assert champion.get_attribute("data-version") == str(half_up.champion)
    assert champion.get_by_role("link", name=f"v{half_up.champion}").is_visible()
    # The trainer does not: its panels say which service, where, and that it did not answer.
    decision = card.get_by_test_id("last-decision").get_by_test_id("panel-error")
    assert decision.is_visible()
    assert re.search(
        rf"trainer at {re.escape(half_up.dead_url)}.* did not answer", decision.inner_text()
    ), decision.inner_text()
    traffic = card.get_by_test_id("traffic").get_by_test_id("panel-error")
    assert "serving" in traffic.inner_text()
    # The rest of the page works: the model's link leads to its page.
    page.get_by_role("link", name=MODEL).first.click()
    page.wait_for_load_state("load")
    assert page.url.endswith(f"/models/{MODEL}")
    # There too: the registry's versions are listed, the trainer's panels say it is down.
    assert page.get_by_role("link", name=f"v{half_up.champion}").first.is_visible()
    errors = page.get_by_test_id("panel-error").all_inner_texts()
    assert errors, "the model page shows no down upstream"
    assert all(" did not answer" in error for error in errors), errors
    console.screenshot("model-page-upstreams-down")


def test_a_viewer_logs_in_by_pasting_a_token(half_up: HalfUp, open_console: OpenConsole) -> None:
    console = open_console(half_up.console_url)
    # Without a cookie the console answers 401 with its login form: expected here.
    console.expect_failure(re.escape(f"{half_up.console_url}/"))
    page = console.visit("/")
    assert page.get_by_test_id("login").is_visible()
    page.fill("#token", half_up.token)
    page.click("#login-submit")
    page.wait_for_load_state("load")
    assert page.get_by_test_id("model-card").count() >= 1
    cookies = {c["name"]: c for c in page.context.cookies(half_up.console_url)}
    assert cookies[COOKIE]["httpOnly"] is True
    console.screenshot("after-login")
