"""The HTTP routers of the features service."""

from driftloop_features.entrypoints.routers import historical, labels, online, repo

ROUTERS = [online.router, historical.router, repo.router, labels.router]
