"""The suite's label store, for a drift trigger waiting for labels of the new distribution."""

from __future__ import annotations

from datetime import datetime
from urllib.parse import quote

import httpx

from driftloop_kit.errors import Unavailable

#: The features service's page size limit for ``GET /labels/{model}``.
_MAX_PAGE = 10_000


class LabelStoreClient:
    """Counts a model's labels through the features service's ``GET /labels/{model}``
    (the use cases' ``LabelCountPort``).

    Args:
        base_url: The features service's base URL.
        timeout: Seconds per request.
        auth: The trainer's credential (``reader`` is enough).
    """

    def __init__(
        self, base_url: str, *, timeout: float = 30.0, auth: httpx.Auth | None = None
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.auth = auth

    async def count(self, model: str, *, since: datetime, at_least: int) -> int:
        """Labels of ``model`` observed at or after ``since``, counted up to ``at_least``
        (one page: the decision only needs to know whether there are enough).

        Raises:
            Unavailable: The label store did not answer.
        """
        limit = max(1, min(at_least, _MAX_PAGE))
        url = f"{self.base_url}/labels/{quote(model, safe='')}"
        try:
            async with httpx.AsyncClient(timeout=self.timeout, auth=self.auth) as client:
                response = await client.get(
                    url, params={"start": since.isoformat(), "limit": str(limit)}
                )
        except httpx.HTTPError as error:
            raise Unavailable(
                f"the label store at {self.base_url} did not answer: {error}"
            ) from error
        if response.status_code == 404:
            return 0
        if response.is_error:
            raise Unavailable(
                f"the label store answered {response.status_code}: {response.text[:200]}"
            )
        return len(response.json()["labels"])
