"""FastAPI dependencies of the serving routers, as ``Annotated`` aliases."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from driftloop_serving.service_layer.scoring import Scorer


async def get_scorer(request: Request) -> Scorer:
    """The scorer built by ``create_app()``.

    ``async`` on purpose: FastAPI runs a plain ``def`` dependency in a worker thread,
    a thread hand-off per request on the scoring path.
    """
    scorer: Scorer = request.app.state.scorer
    return scorer


ScorerDep = Annotated[Scorer, Depends(get_scorer)]
