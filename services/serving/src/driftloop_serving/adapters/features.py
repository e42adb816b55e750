"""The features service's online API (``feast serve``'s ``/get-online-features``).

One pool of keep-alive connections for the app's life
(:mod:`~driftloop_serving.adapters.keepalive`: a keyed prediction pays for this call,
and httpx cost more CPU than the lookup itself). Failures become the kit's errors, so
a request that sent entity keys gets a status that says whose fault it is: the
features service unreachable or too slow (503) or failing (502), an unknown
feature service (404), entity keys it refuses (400).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pydantic_core

from driftloop_kit.auth import ServiceAuth
from driftloop_kit.errors import InvalidInput, NotFound, Unavailable
from driftloop_serving.adapters.keepalive import KeepAliveClient, Reply
from driftloop_serving.domain.entities import BadFeatureAnswer, Entities, FeatureSource, describe

_JSON = {"Content-Type": "application/json"}


def _message(reply: Reply) -> str:
    text = reply.body.decode(errors="replace").strip()
    try:
        body = pydantic_core.from_json(reply.body)
    except ValueError:
        return text or f"HTTP {reply.status}"
    if isinstance(body, dict):
        for key in ("message", "detail", "error"):
            if body.get(key):
                return str(body[key])
    return text


class FeaturesClient:
    """Reads online features from the features service (or any ``feast serve``).

    The service's :class:`~driftloop_serving.service_layer.ports.FeaturesPort`.

    Args:
        base_url: The features service's URL.
        timeout: Seconds a lookup may take, connection included.
        auth: This service's credential, sent with every lookup.
    """

    def __init__(self, base_url: str, *, timeout: float, auth: ServiceAuth | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.auth = auth
        self._client = KeepAliveClient(self.base_url, timeout=timeout)

    async def start(self) -> None:
        """Nothing to open: connections are made on first use."""

    async def stop(self) -> None:
        """Close the connection pool."""
        await self._client.aclose()

    async def get_online_features(
        self, *, source: FeatureSource, entities: Entities
    ) -> Mapping[str, Any]:
        """The online features of ``entities``, with Feast's full feature names.

        Raises:
            Unavailable: The features service is unreachable or did not answer in time.
            NotFound: It does not know the feature service (or a feature view).
            InvalidInput: It refused the entity keys.
            BadFeatureAnswer: It failed (5xx) or answered something unreadable.
        """
        body: dict[str, Any] = {"entities": entities, "full_feature_names": True}
        if isinstance(source, str):
            body["feature_service"] = source
        else:
            body["features"] = source
        headers = _JSON if self.auth is None else {**_JSON, **self.auth.headers()}
        try:
            reply = await self._client.post(
                "/get-online-features", pydantic_core.to_json(body), headers
            )
        except TimeoutError:
            raise Unavailable(
                f"the features service at {self.base_url} did not answer within {self.timeout:g}s"
            ) from None
        except OSError as error:
            raise Unavailable(
                f"the features service at {self.base_url} is unreachable: "
                f"{error or type(error).__name__}"
            ) from None
        status = reply.status
        if status == 404:
            raise NotFound(f"{describe(source)}: {_message(reply)}")
        if 400 <= status < 500:
            raise InvalidInput(
                f"the features service refused the entity keys ({status}): {_message(reply)}"
            )
        if status >= 500:
            raise BadFeatureAnswer(f"the features service failed ({status}): {_message(reply)}")
        try:
            answer = pydantic_core.from_json(reply.body)
        except ValueError as error:
            raise BadFeatureAnswer(f"the features service answered invalid JSON: {error}") from None
        if not isinstance(answer, dict):
            raise BadFeatureAnswer("the features service answered a body that is not an object")
        return answer
