"""The Kubernetes Job a training job becomes with the ``kubernetes`` executor."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from driftloop_trainer.domain.jobs import CONTEXT_ENV, JOB_MODULE

_DNS_LABEL = re.compile(r"[^a-z0-9-]+")


def dns_label(text: str, *, limit: int = 63) -> str:
    """``text`` as a DNS-1123 label (lowercase alphanumerics and dashes)."""
    label = _DNS_LABEL.sub("-", text.lower()).strip("-")[:limit].strip("-")
    return label or "job"


#: Labels of every training Job, by which a restarted trainer finds its Jobs.
JOB_SELECTOR: dict[str, Any] = {"app.kubernetes.io/name": "driftloop-training"}
#: The job id, unchanged (a label holds only its DNS form).
JOB_ID_ANNOTATION = "driftloop.io/job-id"


def job_name(job_id: str) -> str:
    """The Job's name for a job id."""
    return dns_label(f"train-{job_id}")


#: The pod's security context: the services' own (deploy/k8s/base), which the
#: namespace's Pod Security ``restricted`` level admits.
POD_SECURITY_CONTEXT: dict[str, Any] = {
    "runAsNonRoot": True,
    "runAsUser": 10001,
    "runAsGroup": 10001,
    "fsGroup": 10001,
    "seccompProfile": {"type": "RuntimeDefault"},
}
CONTAINER_SECURITY_CONTEXT: dict[str, Any] = {
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "capabilities": {"drop": ["ALL"]},
}
#: Writable folders on a read-only root: scratch space and the home folder.
_SCRATCH = (("tmp", "/tmp"), ("home", "/home/driftloop"))


def job_manifest(
    *,
    job_id: str,
    model_name: str,
    context: Mapping[str, Any],
    image: str,
    namespace: str,
    timeout_seconds: float,
    env: Mapping[str, str] | None = None,
    cpu: str = "1",
    memory: str = "2Gi",
) -> dict[str, Any]:
    """A ``batch/v1`` Job running the job's entry point once, with no retries.

    The trainer retries itself (a new job), so ``backoffLimit`` is 0; the context
    travels as an environment variable, so the pod needs no volume.
    """
    labels = {
        **JOB_SELECTOR,
        "app.kubernetes.io/part-of": "driftloop",
        "driftloop.io/job-id": dns_label(job_id),
        "driftloop.io/model": dns_label(model_name),
    }
    variables = [{"name": CONTEXT_ENV, "value": json.dumps(dict(context))}]
    variables += [{"name": k, "value": v} for k, v in sorted((env or {}).items())]
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": job_name(job_id),
            "namespace": namespace,
            "labels": labels,
            "annotations": {"driftloop.io/model-name": model_name, JOB_ID_ANNOTATION: job_id},
        },
        "spec": {
            "backoffLimit": 0,
            "activeDeadlineSeconds": int(timeout_seconds),
            "ttlSecondsAfterFinished": 86_400,
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "restartPolicy": "Never",
                    "enableServiceLinks": False,
                    "automountServiceAccountToken": False,
                    "securityContext": POD_SECURITY_CONTEXT,
                    "containers": [
                        {
                            "name": "train",
                            "image": image,
                            "command": ["python", "-m", JOB_MODULE],
                            "env": variables,
                            "resources": {
                                "requests": {"cpu": cpu, "memory": memory},
                                "limits": {"cpu": cpu, "memory": memory},
                            },
                            "securityContext": CONTAINER_SECURITY_CONTEXT,
                            "volumeMounts": [
                                {"name": name, "mountPath": path} for name, path in _SCRATCH
                            ],
                        }
                    ],
                    "volumes": [{"name": name, "emptyDir": {}} for name, _ in _SCRATCH],
                },
            },
        },
    }
