"""The trainer's routers."""

from __future__ import annotations

from fastapi import APIRouter

from driftloop_trainer.entrypoints.routers import jobs, models

ROUTERS: tuple[APIRouter, ...] = (models.router, jobs.router)
