"""The Kubernetes manifests of deploy/k8s: schema-valid, complete and in step with the code."""

from __future__ import annotations

import copy
import functools
import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import kubernetes_validate  # type: ignore[import-untyped]
import pytest

from driftloop_events.topics import all_topics
from driftloop_kit.service import SERVICE_NAMES
from driftloop_trainer.adapters.kubernetes import job_manifest
from driftloop_trainer.domain.jobs import CONTEXT_ENV, REPORT_URL_ENV, JobSpec
from tests.unit.deploy.kustomize import Kustomization, load_yaml_documents, pod_spec, render
from tests.unit.deploy.support import (
    DEPLOY,
    loopback_settings,
    service_variables,
    settings_classes,
    shared_variables,
)

pytestmark = pytest.mark.unit

K8S = DEPLOY / "k8s"
BASE = K8S / "base"
PRODUCTION = K8S / "overlays" / "production"
KAFKA = DEPLOY / "kafka"
OVERLAYS = {"base": BASE, "production": PRODUCTION}

#: The oldest Kubernetes the manifests target, and the newest the validator knows.
KUBERNETES_VERSIONS = ("1.30", kubernetes_validate.utils.latest_version())

STRIMZI_API_VERSIONS = ("kafka.strimzi.io/v1beta2", "kafka.strimzi.io/v1")
SHARED_CONFIG = "driftloop-shared"
SHARED_SECRET = "driftloop-shared-secrets"
NAMESPACE = "driftloop"
DNS_1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
DNS_1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


@functools.cache
def rendered(overlay: str) -> Kustomization:
    """The rendering of an overlay; tests must not change it (copy first)."""
    return render(OVERLAYS[overlay])


def container(document: dict[str, Any]) -> dict[str, Any]:
    pod = pod_spec(document)
    assert pod is not None, f"{document['kind']} {document['metadata']['name']} has no pod"
    (only,) = pod["containers"]
    found: dict[str, Any] = only
    return found


def config_data(kustomization: Kustomization, name: str) -> dict[str, str]:
    data: dict[str, str] = kustomization.find("ConfigMap", name)["data"]
    return data


def fake_secrets(service: str) -> dict[str, str]:
    """What `<service>-secrets` and `driftloop-shared-secrets` hold (deploy/README.md)."""
    prefix = f"DRIFTLOOP_{service.upper()}"
    secrets = {
        "DRIFTLOOP_SECRET_KEY": "a-real-secret-of-the-deploy-tests",
        f"{prefix}_DATABASE_URL": f"postgresql+psycopg://{service}:pw@postgres:5432/{service}",
        # Its own Kafka user (production connects with SASL/SCRAM over TLS).
        f"{prefix}_KAFKA_SASL_USERNAME": f"driftloop-{service}",
        f"{prefix}_KAFKA_SASL_PASSWORD": "kafka-pw",
    }
    if service == "features":
        feast = "postgresql://features:pw@postgres:5432/features_feast"
        secrets |= {f"{prefix}_OFFLINE_STORE_URL": feast, f"{prefix}_REGISTRY_URL": feast}
    return secrets


def check_kafka_topic(document: dict[str, Any]) -> list[str]:
    """What is wrong with a Strimzi KafkaTopic (no built-in schema covers the CRD)."""
    problems: list[str] = []
    if document.get("apiVersion") not in STRIMZI_API_VERSIONS:
        problems.append(f"apiVersion {document.get('apiVersion')!r}")
    metadata = document.get("metadata") or {}
    name = metadata.get("name")
    if not isinstance(name, str) or len(name) > 253 or not DNS_1123_SUBDOMAIN.fullmatch(name):
        problems.append(f"metadata.name {name!r} is not a DNS-1123 subdomain")
    cluster = (metadata.get("labels") or {}).get("strimzi.io/cluster")
    if not isinstance(cluster, str) or not DNS_1123_LABEL.fullmatch(cluster):
        problems.append("label strimzi.io/cluster (the Kafka cluster) is missing")
    spec = document.get("spec")
    if not isinstance(spec, dict):
        return [*problems, "spec is missing"]
    unknown = set(spec) - {"topicName", "partitions", "replicas", "config"}
    if unknown:
        problems.append(f"unknown spec fields {sorted(unknown)}")
    for field, upper in (("partitions", 2**31 - 1), ("replicas", 32767)):
        value = spec.get(field)
        if type(value) is not int or not 1 <= value <= upper:
            problems.append(f"spec.{field} {value!r} is not an integer in 1..{upper}")
    topic = spec.get("topicName", name)
    if not isinstance(topic, str) or not re.fullmatch(r"[a-zA-Z0-9._-]{1,249}", topic):
        problems.append(f"spec.topicName {topic!r} is not a Kafka topic name")
    config = spec.get("config", {})
    if not isinstance(config, dict) or not all(
        isinstance(v, str | int | float | bool) for v in config.values()
    ):
        problems.append("spec.config must map names to scalar values")
    return problems


# --- the files ----------------------------------------------------------------------


@pytest.mark.parametrize("folder", [BASE, PRODUCTION, KAFKA], ids=lambda p: p.name)
def test_every_file_of_a_kustomization_folder_is_listed_in_it(folder: Path) -> None:
    used = render(folder).files
    present = {p.resolve() for p in folder.iterdir() if p.is_file()}
    assert present - used == set(), "files a kustomization does not list (dead manifests)"


def test_the_production_overlay_is_built_on_the_base() -> None:
    assert rendered("base").files < rendered("production").files
    base_resources = {(d["kind"], d["metadata"]["name"]) for d in rendered("base").documents}
    production = {(d["kind"], d["metadata"]["name"]) for d in rendered("production").documents}
    assert production == base_resources


# --- schemas ------------------------------------------------------------------------


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_manifest_is_valid_against_the_kubernetes_json_schema(
    overlay: str, version: str
) -> None:
    checked: set[str] = set()
    errors: list[str] = []
    for document in rendered(overlay).documents:
        if document["apiVersion"] in STRIMZI_API_VERSIONS:
            continue
        try:
            kubernetes_validate.validate(document, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            errors.append(f"{document['kind']} {document['metadata']['name']}: {exc.message}")
        checked.add(document["kind"])
    assert errors == []
    assert {
        "Namespace",
        "ConfigMap",
        "Service",
        "Deployment",
        "HorizontalPodAutoscaler",
        "CronJob",
        "PersistentVolumeClaim",
        "ServiceAccount",
        "Role",
        "RoleBinding",
    } <= checked


def test_the_schema_check_refuses_a_broken_deployment() -> None:
    deployment = copy.deepcopy(rendered("base").find("Deployment", "serving"))
    container(deployment)["ports"][0]["containerPort"] = "http"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSIONS[0], strict=True)
    deployment = copy.deepcopy(rendered("base").find("Deployment", "serving"))
    container(deployment)["livenessProbe"]["httpGet"]["paht"] = "/healthz"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSIONS[0], strict=True)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_kafka_topics_have_the_fields_strimzi_requires(overlay: str) -> None:
    topics = rendered(overlay).of_kind("KafkaTopic")
    assert topics
    assert {d["metadata"]["name"]: check_kafka_topic(d) for d in topics} == {
        d["metadata"]["name"]: [] for d in topics
    }


def test_the_strimzi_check_refuses_a_broken_topic() -> None:
    topic = copy.deepcopy(rendered("base").of_kind("KafkaTopic")[0])
    assert check_kafka_topic(topic) == []
    broken = copy.deepcopy(topic)
    broken["spec"]["partitions"] = "3"
    assert check_kafka_topic(broken)
    broken = copy.deepcopy(topic)
    del broken["metadata"]["labels"]["strimzi.io/cluster"]
    assert check_kafka_topic(broken)
    broken = copy.deepcopy(topic)
    broken["spec"]["partition"] = 3
    assert check_kafka_topic(broken)


# --- topics -------------------------------------------------------------------------


def topic_specs(documents: list[dict[str, Any]]) -> dict[str, tuple[int, dict[str, Any]]]:
    return {
        d["spec"]["topicName"]: (d["spec"]["partitions"], d["spec"]["config"]) for d in documents
    }


def test_the_kafka_topics_equal_deploy_kafka_topics_yaml_and_the_declared_topics() -> None:
    deployed = topic_specs(rendered("production").of_kind("KafkaTopic"))
    declared_file = topic_specs(load_yaml_documents(KAFKA / "topics.yaml"))
    declared = {
        spec.name: (spec.partitions, spec.config()) for spec in all_topics(include_dlq=True)
    }
    assert deployed == declared_file
    assert deployed == declared


def test_the_services_use_the_bootstrap_service_of_the_topics_strimzi_cluster() -> None:
    kustomization = rendered("base")
    clusters = {
        d["metadata"]["labels"]["strimzi.io/cluster"] for d in kustomization.of_kind("KafkaTopic")
    }
    (cluster,) = clusters
    servers = config_data(kustomization, SHARED_CONFIG)["DRIFTLOOP_KAFKA_BOOTSTRAP_SERVERS"]
    assert servers == f"{cluster}-kafka-bootstrap:9092"


# --- services -----------------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_service_has_a_deployment_a_service_and_a_config_map(overlay: str) -> None:
    kustomization = rendered(overlay)
    for kind in ("Deployment", "Service", "ConfigMap"):
        names = {d["metadata"]["name"] for d in kustomization.of_kind(kind)}
        assert set(SERVICE_NAMES) <= names, kind
    assert {d["metadata"]["name"] for d in kustomization.of_kind("Deployment")} == set(
        SERVICE_NAMES
    )


def expected_ports(cls: Any) -> dict[str, int]:
    """The ports a service listens on by their name in the manifests: ``http``, and
    ``grpc`` for serving's ``grpc_port`` (its other ports, by default)."""
    others = {
        field.removesuffix("_port"): cls.model_fields[field].default
        for field in cls.other_port_fields
    }
    return {"http": cls.default_port, **others}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_probes_ask_healthz_and_readyz_on_the_port_the_service_listens_on(overlay: str) -> None:
    kustomization = rendered(overlay)
    for name, cls in settings_classes().items():
        main = container(kustomization.find("Deployment", name))
        ports = {p["name"]: p["containerPort"] for p in main["ports"]}
        assert ports == expected_ports(cls), name
        assert config_data(kustomization, name)[cls.env_name("port")] == str(cls.default_port)
        probes = {kind: main[kind]["httpGet"] for kind in ("startupProbe", "livenessProbe")}
        probes["readinessProbe"] = main["readinessProbe"]["httpGet"]
        assert {kind: probe["path"] for kind, probe in probes.items()} == {
            "startupProbe": "/healthz",
            "livenessProbe": "/healthz",
            "readinessProbe": "/readyz",
        }, name
        assert all(probe["port"] in ("http", cls.default_port) for probe in probes.values())


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_service_selects_the_pods_of_its_deployment_only(overlay: str) -> None:
    kustomization = rendered(overlay)
    deployments = kustomization.of_kind("Deployment")
    for name, cls in settings_classes().items():
        service = kustomization.find("Service", name)
        selector = service["spec"]["selector"]
        selected = [
            d["metadata"]["name"]
            for d in deployments
            if selector.items() <= d["spec"]["template"]["metadata"]["labels"].items()
        ]
        assert selected == [name]
        ports = {port["name"]: port for port in service["spec"]["ports"]}
        assert {n: port["port"] for n, port in ports.items()} == expected_ports(cls)
        assert {port["targetPort"] for port in ports.values()} <= {
            p["name"] for p in container(kustomization.find("Deployment", name))["ports"]
        }
    for deployment in deployments:
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_config_maps_set_only_real_settings_of_their_service(overlay: str) -> None:
    kustomization = rendered(overlay)
    maps = {d["metadata"]["name"]: d["data"] for d in kustomization.of_kind("ConfigMap")}
    assert set(maps) == {SHARED_CONFIG, *SERVICE_NAMES}
    assert set(maps[SHARED_CONFIG]) <= shared_variables()
    for name in SERVICE_NAMES:
        unknown = set(maps[name]) - service_variables(name)
        assert unknown == set(), f"ConfigMap {name} sets variables no setting reads"
        assert all(isinstance(v, str) for v in maps[name].values())


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_deployment_reads_the_shared_and_its_own_config_and_secrets(overlay: str) -> None:
    kustomization = rendered(overlay)
    readme = (DEPLOY / "README.md").read_text()
    for name in SERVICE_NAMES:
        sources = container(kustomization.find("Deployment", name))["envFrom"]
        assert sources == [
            {"configMapRef": {"name": SHARED_CONFIG}},
            {"configMapRef": {"name": name}},
            {"secretRef": {"name": SHARED_SECRET}},
            {"secretRef": {"name": f"{name}-secrets"}},
        ]
        # The Secrets are created by the operator: the README says how.
        assert f"{name}-secrets" in readme
    assert SHARED_SECRET in readme


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_service_starts_from_its_config_maps_and_secrets(
    overlay: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    kustomization = rendered(overlay)
    for name, cls in settings_classes().items():
        environment = {
            **config_data(kustomization, SHARED_CONFIG),
            **config_data(kustomization, name),
            **fake_secrets(name),
        }
        for key in [k for k in os.environ if k.startswith("DRIFTLOOP_")]:
            monkeypatch.delenv(key)
        for key, value in environment.items():
            monkeypatch.setenv(key, value)
        settings = cls()
        assert settings.host == "0.0.0.0"
        assert settings.port == cls.default_port
        assert settings.environment == ("production" if overlay == "production" else "development")
        assert loopback_settings(settings) == {}, "a container reaches no peer on loopback"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_service_urls_in_config_maps_name_a_service_and_its_port(overlay: str) -> None:
    kustomization = rendered(overlay)
    ports = {
        d["metadata"]["name"]: {p["port"] for p in d["spec"]["ports"]}
        for d in kustomization.of_kind("Service")
    }
    urls = [
        (key, value)
        for document in kustomization.of_kind("ConfigMap")
        for key, value in document["data"].items()
        if value.startswith("http://")
    ]
    assert len(urls) >= 8
    for key, value in urls:
        parts = urlsplit(value)
        assert parts.hostname in ports, f"{key}={value}"
        assert parts.port in ports[parts.hostname], f"{key}={value}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_pods_run_unprivileged_without_service_links(overlay: str) -> None:
    kustomization = rendered(overlay)
    claims = {d["metadata"]["name"] for d in kustomization.of_kind("PersistentVolumeClaim")}
    workloads = [d for d in kustomization.documents if pod_spec(d) is not None]
    assert len(workloads) == len(SERVICE_NAMES) + 1
    for workload in workloads:
        pod = pod_spec(workload)
        assert pod is not None
        where = f"{workload['kind']} {workload['metadata']['name']}"
        assert pod["securityContext"]["runAsNonRoot"] is True, where
        assert pod["securityContext"]["runAsUser"] != 0, where
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, where
        assert pod["enableServiceLinks"] is False, where
        # Only the trainer holds an API token, for its namespaced Role on Jobs.
        trainer = pod.get("serviceAccountName") == "driftloop-trainer"
        assert pod["automountServiceAccountToken"] is trainer, where
        main = container(workload)
        assert main["securityContext"] == {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        }, where
        volumes = {v["name"]: v for v in pod["volumes"]}
        mounted = {m["name"] for m in main["volumeMounts"]}
        assert mounted == set(volumes), where
        assert {m["mountPath"] for m in main["volumeMounts"]} >= {"/tmp"}, where
        for volume in volumes.values():
            if "persistentVolumeClaim" in volume:
                assert volume["persistentVolumeClaim"]["claimName"] in claims, where


def test_no_service_name_would_inject_a_variable_a_setting_reads() -> None:
    # Service links (off, but a pod spec may forget) inject <NAME>_PORT and
    # <NAME>_SERVICE_HOST; a Service called e.g. driftloop-tracking would set
    # DRIFTLOOP_TRACKING_PORT=tcp://... and stop the tracking service.
    every_variable = set().union(*(service_variables(n) for n in SERVICE_NAMES))
    for service in rendered("production").of_kind("Service"):
        prefix = service["metadata"]["name"].upper().replace("-", "_")
        injected = {f"{prefix}_PORT", f"{prefix}_SERVICE_HOST", f"{prefix}_SERVICE_PORT"}
        assert injected & every_variable == set()


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_resource_lives_in_the_driftloop_namespace(overlay: str) -> None:
    kustomization = rendered(overlay)
    assert kustomization.find("Namespace", NAMESPACE)["metadata"].get("namespace") is None
    for document in kustomization.documents:
        if document["kind"] != "Namespace":
            assert document["metadata"]["namespace"] == NAMESPACE, document["metadata"]["name"]
    trainer = config_data(kustomization, "trainer")
    assert trainer["DRIFTLOOP_TRAINER_KUBERNETES_NAMESPACE"] == NAMESPACE


# --- serving ------------------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_serving_is_scaled_by_a_horizontal_pod_autoscaler_on_cpu(overlay: str) -> None:
    kustomization = rendered(overlay)
    (autoscaler,) = kustomization.of_kind("HorizontalPodAutoscaler")
    spec = autoscaler["spec"]
    assert spec["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "serving",
    }
    assert 2 <= spec["minReplicas"] < spec["maxReplicas"]
    (metric,) = spec["metrics"]
    assert metric["resource"]["name"] == "cpu"
    serving = kustomization.find("Deployment", "serving")
    # Utilization is relative to the request; the autoscaler, not the manifest, owns the count.
    assert "cpu" in container(serving)["resources"]["requests"]
    assert "replicas" not in serving["spec"]
    budget = kustomization.find("PodDisruptionBudget", "serving")
    assert budget["spec"]["minAvailable"] < spec["minReplicas"]


# --- the training job ---------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_training_template_has_the_shape_of_the_jobs_the_trainer_writes(overlay: str) -> None:
    kustomization = rendered(overlay)
    template = kustomization.find("CronJob", "training-template")
    assert template["spec"]["suspend"] is True
    report_url = config_data(kustomization, "trainer")["DRIFTLOOP_TRAINER_PUBLIC_URL"]
    written = job_manifest(
        job_id="job-1",
        model_name="iris-classifier",
        context={},
        image="driftloop/trainer:0.1.0",
        namespace=NAMESPACE,
        timeout_seconds=3600,
        env={REPORT_URL_ENV: report_url},
    )
    job = template["spec"]["jobTemplate"]["spec"]
    for field in ("backoffLimit", "activeDeadlineSeconds", "ttlSecondsAfterFinished"):
        assert job[field] == written["spec"][field], field
    pod, written_pod = job["template"]["spec"], written["spec"]["template"]["spec"]
    for field in ("restartPolicy", "securityContext", "volumes", "automountServiceAccountToken"):
        assert pod[field] == written_pod[field], field
    ours, theirs = container(template), written_pod["containers"][0]
    assert (ours["name"], ours["command"]) == (theirs["name"], theirs["command"])
    assert ours["securityContext"] == theirs["securityContext"]
    assert ours["volumeMounts"] == theirs["volumeMounts"]
    # The trainer adds the job's context; everything else is the same.
    assert {e["name"] for e in ours["env"]} | {CONTEXT_ENV} == {e["name"] for e in theirs["env"]}
    assert {e["name"]: e["value"] for e in ours["env"]}[REPORT_URL_ENV] == report_url
    labels = written["spec"]["template"]["metadata"]["labels"]
    for key in ("app.kubernetes.io/name", "app.kubernetes.io/part-of"):
        assert job["template"]["metadata"]["labels"][key] == labels[key]
    # The image is the trainer's, the one JobSpec defaults to.
    default_image = JobSpec.model_fields["image"].default.rpartition(":")[0]
    trainer_image = container(kustomization.find("Deployment", "trainer"))["image"]
    assert ours["image"] == trainer_image
    assert ours["image"].rpartition(":")[0].endswith(default_image)
    if overlay == "base":
        assert ours["resources"] == theirs["resources"]


def restricted_violations(pod: dict[str, Any]) -> list[str]:
    """What the Pod Security Standards' ``restricted`` level refuses in a pod spec.

    The checks of the level (kubernetes.io/docs/concepts/security/pod-security-standards)
    that a pod spec can fail: non-root, no privilege escalation, every capability
    dropped, a RuntimeDefault or Localhost seccomp profile, no host namespaces, ports
    or paths, no privileged container.
    """
    found: list[str] = []
    pod_context = pod.get("securityContext", {})
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(key):
            found.append(key)
    if any("hostPath" in v for v in pod.get("volumes", [])):
        found.append("hostPath volume")
    for c in pod["containers"]:
        context = c.get("securityContext", {})
        if context.get("privileged"):
            found.append(f"{c['name']}: privileged")
        if context.get("allowPrivilegeEscalation") is not False:
            found.append(f"{c['name']}: allowPrivilegeEscalation must be false")
        if context.get("capabilities", {}).get("drop") != ["ALL"]:
            found.append(f"{c['name']}: capabilities must drop ALL")
        if not context.get("runAsNonRoot", pod_context.get("runAsNonRoot")):
            found.append(f"{c['name']}: runAsNonRoot must be true")
        if context.get("runAsUser", pod_context.get("runAsUser")) == 0:
            found.append(f"{c['name']}: runAsUser 0")
        seccomp = context.get("seccompProfile", pod_context.get("seccompProfile", {}))
        if seccomp.get("type") not in ("RuntimeDefault", "Localhost"):
            found.append(f"{c['name']}: seccompProfile must be RuntimeDefault or Localhost")
        if any("hostPort" in p for p in c.get("ports", [])):
            found.append(f"{c['name']}: hostPort")
    return found


def test_the_job_the_trainer_writes_is_admitted_by_the_restricted_pod_security_level() -> None:
    written = job_manifest(
        job_id="job-1",
        model_name="iris-classifier",
        context={},
        image="driftloop/trainer:0.1.0",
        namespace=NAMESPACE,
        timeout_seconds=3600,
    )
    assert restricted_violations(written["spec"]["template"]["spec"]) == []
    # The check refuses what the namespace would: a pod without the contexts.
    bare = {"containers": [{"name": "train"}]}
    assert len(restricted_violations(bare)) == 4


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_pod_of_the_suite_is_admitted_by_the_restricted_level(overlay: str) -> None:
    kustomization = rendered(overlay)
    pods = [
        (d["metadata"]["name"], pod)
        for d in kustomization.documents
        if (pod := pod_spec(d)) is not None
    ]
    assert len(pods) >= 7  # six services and the training template
    for name, pod in pods:
        assert restricted_violations(pod) == [], name


# --- network policies ---------------------------------------------------------------

TRAINING = "driftloop-training"


def _selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items())


def _peer_matches(peer: dict[str, Any], labels: dict[str, str]) -> bool:
    """A ``from``/``to`` peer matching a pod of the suite's own namespace."""
    if "namespaceSelector" in peer or "ipBlock" in peer:
        return False  # other namespaces, or addresses: not a pod of the suite
    return _selects(peer["podSelector"], labels)


def _allows(rules: list[dict[str, Any]], key: str, labels: dict[str, str], port: int) -> bool:
    for rule in rules:
        peers = rule.get(key)
        ports = rule.get("ports")
        if peers is not None and not any(_peer_matches(p, labels) for p in peers):
            continue
        if ports is not None and not any(p.get("port") == port for p in ports):
            continue
        return True
    return False


def flow_allowed(
    policies: list[dict[str, Any]], source: dict[str, str], target: dict[str, str], port: int
) -> bool:
    """Whether the policies let ``source`` open TCP ``port`` on ``target`` (same namespace):
    some policy selecting the target admits it in, and some selecting the source lets it
    out (every pod is selected by the default deny, so both directions need a rule)."""
    inbound = [p for p in policies if _selects(p["spec"]["podSelector"], target)]
    outbound = [p for p in policies if _selects(p["spec"]["podSelector"], source)]
    admitted = any(_allows(p["spec"].get("ingress", []), "from", source, port) for p in inbound)
    let_out = any(_allows(p["spec"].get("egress", []), "to", target, port) for p in outbound)
    return admitted and let_out


def suite_labels(name: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": name, "app.kubernetes.io/part-of": "driftloop"}


def needed_flows(kustomization: Kustomization) -> set[tuple[str, str, int]]:
    """(caller, service, port) of every ``http://<service>:<port>`` a service is configured
    with; training jobs get the trainer's URLs (and report to the trainer)."""
    flows: set[tuple[str, str, int]] = set()
    for name in SERVICE_NAMES:
        for key, value in config_data(kustomization, name).items():
            parts = urlsplit(value)
            if key.endswith("_PUBLIC_URL") or parts.scheme != "http":
                continue
            assert parts.hostname in SERVICE_NAMES, value
            assert parts.port is not None, value
            flows.add((name, parts.hostname, parts.port))
            if name == "trainer":
                flows.add((TRAINING, parts.hostname, parts.port))
    flows.add((TRAINING, "trainer", 8008))
    return flows


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_network_policies_deny_by_default_and_allow_the_flows_the_suite_needs(
    overlay: str,
) -> None:
    kustomization = rendered(overlay)
    policies = kustomization.of_kind("NetworkPolicy")
    deny = kustomization.find("NetworkPolicy", "default-deny")["spec"]
    assert deny["podSelector"] == {}
    assert sorted(deny["policyTypes"]) == ["Egress", "Ingress"]
    assert "ingress" not in deny
    assert "egress" not in deny

    flows = needed_flows(kustomization)
    assert len(flows) >= 12
    for caller, service, port in flows:
        assert flow_allowed(policies, suite_labels(caller), suite_labels(service), port), (
            f"{caller} -> {service}:{port}"
        )
    # Nothing else between the suite's pods: e.g. serving never calls tracking, a
    # training job never calls the monitor, and nothing calls into serving's pods.
    everyone = [*SERVICE_NAMES, TRAINING]
    ports = {service: port for _, service, port in flows} | {
        "monitor": 8006,
        "serving": 8080,
        "console": 8090,
    }
    for caller in everyone:
        for service in SERVICE_NAMES:
            if (caller, service, ports[service]) in flows or caller == service:
                continue
            assert not flow_allowed(
                policies, suite_labels(caller), suite_labels(service), ports[service]
            ), f"{caller} -> {service} is allowed but not needed"


# --- production ---------------------------------------------------------------------


def test_production_pins_images_sets_limits_and_refuses_placeholder_secrets() -> None:
    kustomization = rendered("production")
    assert config_data(kustomization, SHARED_CONFIG)["DRIFTLOOP_ENVIRONMENT"] == "production"
    workloads = [d for d in kustomization.documents if pod_spec(d) is not None]
    for workload in workloads:
        main = container(workload)
        repository, _, tag = main["image"].rpartition(":")
        assert "." in repository.split("/")[0], f"{main['image']} names no registry"
        assert tag, main["image"]
        assert tag != "latest", main["image"]
        assert {"cpu", "memory"} <= set(main["resources"]["limits"]), workload["metadata"]["name"]
        assert {"cpu", "memory"} <= set(main["resources"]["requests"]), workload["metadata"]["name"]
    replicas = {
        d["metadata"]["name"]: d["spec"].get("replicas")
        for d in kustomization.of_kind("Deployment")
    }
    assert all(replicas[n] >= 2 for n in ("tracking", "registry", "features", "monitor"))
    assert replicas["trainer"] == 1
    assert kustomization.find("Deployment", "trainer")["spec"]["strategy"] == {"type": "Recreate"}


@pytest.mark.parametrize("overlay", list(OVERLAYS))
def test_the_trainer_may_run_its_jobs_in_its_namespace_and_nothing_more(overlay: str) -> None:
    kustomization = rendered(overlay)
    assert kustomization.of_kind("ClusterRole") == []
    assert kustomization.of_kind("ClusterRoleBinding") == []
    (role,) = kustomization.of_kind("Role")
    granted = {
        (group, resource, verb)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }
    # What the kubernetes executor calls: Jobs created, watched, listed by label,
    # deleted; their pods listed by label and their logs read.
    jobs = {("batch", "jobs", verb) for verb in ("create", "get", "list", "watch", "delete")}
    assert granted == jobs | {("", "pods", "get"), ("", "pods", "list"), ("", "pods/log", "get")}
    (binding,) = kustomization.of_kind("RoleBinding")
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    (deployment,) = [
        d for d in kustomization.of_kind("Deployment") if d["metadata"]["name"] == "trainer"
    ]
    account = deployment["spec"]["template"]["spec"]["serviceAccountName"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": account, "namespace": "driftloop"}
    ]
