"""Batch scoring's prediction records to the ``predictions`` topic, acknowledged a chunk
at a time.

Serving's :class:`~driftloop_serving.adapters.prediction_log.PredictionLog` never makes a
request wait and spills to disk while the broker is away; a batch run has no one
waiting, so it waits instead: each chunk's records are sent and acknowledged before the
next chunk is read, which keeps memory flat and makes a broker that is not there a
failure of the run (``--no-log`` scores without logging) rather than a folder of spill
files nobody replays.
"""

from __future__ import annotations

import asyncio

from driftloop_bus.publisher import Publisher
from driftloop_events.envelope import KafkaRecord
from driftloop_events.topics import TOPICS

__all__ = ["BatchLogError", "PredictionSender"]


class BatchLogError(Exception):
    """The prediction records could not be delivered to the broker."""


class PredictionSender:
    """Sends prediction records and waits for the broker's acknowledgement.

    Args:
        bootstrap_servers: The Kafka cluster.
        ack_timeout: Seconds a chunk's records may take to be acknowledged.
    """

    def __init__(self, bootstrap_servers: str, *, ack_timeout: float = 60.0) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.ack_timeout = ack_timeout
        self._publisher = Publisher(
            bootstrap_servers,
            client_id="driftloop-batch-scoring",
            topics=[TOPICS["predictions"]],
            linger_ms=20,
            max_batch_size=1024 * 1024,
            request_timeout_ms=int(ack_timeout * 1000),
        )

    async def start(self) -> None:
        """Connect (creating the topic when missing).

        Raises:
            BatchLogError: The broker cannot be reached.
        """
        try:
            await asyncio.wait_for(self._publisher.start(), self.ack_timeout)
        except Exception as error:
            raise BatchLogError(
                f"cannot reach the Kafka broker at {self.bootstrap_servers} to log the "
                f"predictions ({type(error).__name__}: {error})"
            ) from None

    async def send(self, records: list[KafkaRecord]) -> None:
        """Send ``records`` and wait until every one is acknowledged.

        Raises:
            BatchLogError: A record was not acknowledged in time.
        """
        try:
            futures = [await self._publisher.send_record(record) for record in records]
            await self._publisher.flush()
            await asyncio.wait_for(asyncio.gather(*futures), self.ack_timeout)
        except Exception as error:
            raise BatchLogError(
                f"the broker at {self.bootstrap_servers} did not take the prediction records "
                f"({type(error).__name__}: {error})"
            ) from None

    async def stop(self) -> None:
        """Disconnect."""
        await self._publisher.stop()
