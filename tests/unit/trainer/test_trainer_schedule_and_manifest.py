"""Schedules (cron and intervals) and the Kubernetes Job manifest of a training job."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml

from driftloop_kit.declarations import TriggerPolicy
from driftloop_trainer.adapters.executors import KubernetesExecutor
from driftloop_trainer.adapters.kubernetes import dns_label
from driftloop_trainer.domain.jobs import CONTEXT_ENV, JobContext, JobSpec, ModelConfig
from driftloop_trainer.domain.schedule import due, latest_slot

pytestmark = pytest.mark.unit

T = datetime(2026, 3, 1, 12, 34, 56, tzinfo=UTC)


def test_an_interval_schedule_fires_at_multiples_of_the_interval() -> None:
    assert latest_slot("3600", T) == datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    assert latest_slot("", T) is None


def test_a_cron_schedule_fires_at_its_latest_matching_minute() -> None:
    assert latest_slot("0 3 * * *", T) == datetime(2026, 3, 1, 3, 0, tzinfo=UTC)
    assert latest_slot("*/15 * * * *", T) == datetime(2026, 3, 1, 12, 30, tzinfo=UTC)


def test_a_slot_that_passed_before_the_scheduler_started_is_not_due() -> None:
    started = datetime(2026, 3, 1, 12, 10, tzinfo=UTC)
    assert due("0 3 * * *", now=T, since=started) is None
    assert due("*/15 * * * *", now=T, since=started) == datetime(2026, 3, 1, 12, 30, tzinfo=UTC)


def test_a_schedule_that_is_neither_seconds_nor_cron_is_refused() -> None:
    with pytest.raises(ValueError, match="cron"):
        ModelConfig(policy=TriggerPolicy(schedule="every tuesday"))


def context(tmp_path: Path) -> JobContext:
    return JobContext(
        job_id="job-7d1c2b9a04ef",
        model_name="Iris_Classifier",
        parameters={"max_iter": "200"},
        spec=JobSpec(feature_service="iris_classifier", image="ghcr.io/acme/trainer:1.2"),
        trigger={"kind": "drift", "event_id": "e-1"},
        tracking_url="http://tracking:5000",
        registry_url="http://registry:5001",
        features_url="http://features:6566",
        experiment_name="driftloop-training",
        work_dir=str(tmp_path / "job"),
    )


def test_the_kubernetes_job_manifest_is_a_valid_batch_v1_job(tmp_path: Path) -> None:
    executor = KubernetesExecutor(namespace="ml", env={"DRIFTLOOP_TRAINER_REPORT_URL": "http://t"})
    manifest = executor.manifest(context(tmp_path))
    kubernetes_validate.validate(manifest, "1.30", strict=True)
    assert manifest["metadata"]["name"] == "train-job-7d1c2b9a04ef"
    assert manifest["metadata"]["labels"]["driftloop.io/model"] == "iris-classifier"
    assert manifest["spec"]["backoffLimit"] == 0
    container = manifest["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "ghcr.io/acme/trainer:1.2"
    assert container["command"] == ["python", "-m", "driftloop_trainer.entrypoints.job"]
    env = {item["name"]: item["value"] for item in container["env"]}
    carried = JobContext.from_json(yaml.safe_load(env[CONTEXT_ENV]))
    assert carried.spec.feature_service == "iris_classifier"
    assert carried.parameters == {"max_iter": "200"}


def test_a_broken_manifest_is_refused_by_the_schema(tmp_path: Path) -> None:
    manifest = KubernetesExecutor(namespace="ml").manifest(context(tmp_path))
    manifest["spec"]["template"]["spec"]["containers"][0]["env"] = "not a list"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(manifest, "1.30", strict=True)


def test_dns_labels_are_lowercase_alphanumerics_and_dashes() -> None:
    assert dns_label("Iris_Classifier/v2") == "iris-classifier-v2"
    assert len(dns_label("x" * 100)) == 63
