"""Monitoring policies per registered model."""

from __future__ import annotations

from fastapi import APIRouter, Response

from driftloop_kit.auth import DEPLOYER, READER
from driftloop_kit.errors import NotFound
from driftloop_monitor.domain.policy import MonitorPolicy
from driftloop_monitor.entrypoints.deps import MonitorDep, StoreDep

router = APIRouter(prefix="/policies", tags=["policies"])


@router.get("", summary="Every model's policy", dependencies=[READER])
async def list_policies(store: StoreDep) -> dict[str, MonitorPolicy]:
    return await store.list_policies()


@router.get(
    "/{model_name}",
    summary="A model's policy (the defaults when it has none)",
    dependencies=[READER],
)
async def get_policy(model_name: str, store: StoreDep) -> MonitorPolicy:
    return await store.get_policy(model_name) or MonitorPolicy()


@router.put("/{model_name}", summary="Create or replace a model's policy", dependencies=[DEPLOYER])
async def put_policy(
    model_name: str, policy: MonitorPolicy, store: StoreDep, monitor: MonitorDep
) -> MonitorPolicy:
    await store.put_policy(model_name, policy)
    monitor.policies.forget(model_name)
    return policy


@router.delete(
    "/{model_name}", status_code=204, summary="Back to the defaults", dependencies=[DEPLOYER]
)
async def delete_policy(model_name: str, store: StoreDep, monitor: MonitorDep) -> Response:
    if not await store.delete_policy(model_name):
        raise NotFound(f"model {model_name!r} has no policy")
    monitor.policies.forget(model_name)
    return Response(status_code=204)
