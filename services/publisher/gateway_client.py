"""``GatewayClient``: publish events through the gateway's batch endpoint, for systems that speak HTTP only.

Events are sent in batches of up to 1000 per department over a few parallel lanes. A citizen always travels in
the same lane and a lane sends one batch at a time, so every citizen's events reach Kafka in the order given.
A batch answered 503 (or 502/504, a plain 500 once or twice, or not answered at all) is sent again under the
backbone's retry policy (``services.retry``: backoff with jitter, ``Retry-After`` honoured, a 5-minute deadline
by default): repeats are answered 200 with the original coordinates, so retrying never publishes twice. A 4xx
refuses the batch at once (``BatchRefused``); past the deadline the call raises ``GaveUpError``.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import httpx
import orjson

from services.retry import GaveUpError, RetryPolicy, ServerUnavailableError, retry_after_seconds

__all__ = ["BatchRefused", "GatewayClient", "GaveUpError", "Tally"]

MAX_BATCH = 1000


class BatchRefused(RuntimeError):  # noqa: N818 - reads as what happened
    """The gateway refused a whole batch (401, 413, 422 …): retrying cannot help."""


@dataclass
class Tally:
    """Running counts of a publishing run."""

    sent: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    retries: int = 0
    first_rejections: list[str] = field(default_factory=list)

    def add(self, results: Sequence[Mapping[str, object]]) -> None:
        self.sent += len(results)
        for result in results:
            status = result.get("status")
            if status == 202:
                self.accepted += 1
            elif status == 200:
                self.duplicates += 1
            else:
                self.rejected += 1
                if len(self.first_rejections) < 5:
                    error = result.get("error")
                    message = error.get("message") if isinstance(error, dict) else None
                    self.first_rejections.append(f"{status}: {message}")


class GatewayClient:
    """An HTTP client of ``POST /v1/events:batch`` with one department token per department."""

    def __init__(
        self,
        base_url: str,
        tokens: Mapping[str, str],
        *,
        timeout_s: float = 120.0,
        retry: RetryPolicy | None = None,
        on_retry: Callable[[BaseException, float], None] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        """``retry``: the policy of every batch (``RetryPolicy()``, 5 minutes, by default); ``on_retry(error,
        wait_s)`` is told before each wait (a progress display)."""
        self.tokens = dict(tokens)
        self.retry = retry or RetryPolicy()
        self.on_retry = on_retry
        self._client = httpx.AsyncClient(
            base_url=base_url,
            timeout=httpx.Timeout(timeout_s, connect=10.0),
            transport=transport,
            limits=httpx.Limits(max_connections=32, max_keepalive_connections=32),
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def __aenter__(self) -> GatewayClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def publish_batch(self, department: str, values: Sequence[bytes]) -> list[dict[str, object]]:
        """Send one batch of one department's events (JSON bytes each); return the per-event results.

        Retries under ``self.retry`` while the gateway is unreachable or answers that it is unavailable; raises
        ``BatchRefused`` when it refuses the batch as a whole (4xx, or a 500 beyond the policy's allowance) and
        ``GaveUpError`` past the policy's deadline.
        """
        return (await self._post(department, values))[0]

    async def _post(self, department: str, values: Sequence[bytes]) -> tuple[list[dict[str, object]], int]:
        """The batch's results and how many times it was sent again."""
        if len(values) > MAX_BATCH:
            raise ValueError(f"a batch holds at most {MAX_BATCH} events")
        body = b'{"events":[' + b",".join(values) + b"]}"
        headers = {"Authorization": f"Bearer {self.tokens[department]}", "Content-Type": "application/json"}
        attempts = 0

        async def attempt() -> list[dict[str, object]]:
            nonlocal attempts
            attempts += 1
            response = await self._client.post("/v1/events:batch", content=body, headers=headers)
            if response.status_code in (200, 207):
                results: list[dict[str, object]] = orjson.loads(response.content)["results"]
                return results
            if response.status_code >= 500:
                after = retry_after_seconds(response.headers.get("retry-after"))
                raise ServerUnavailableError(response.status_code, response.text, after)
            raise BatchRefused(f"the gateway answered {response.status_code}: {response.text[:500]}")

        what = f"sending a batch of {len(values)} {department} events to the gateway"
        try:
            results: list[dict[str, object]] = await self.retry.retrying(what, on_retry=self.on_retry)(attempt)
        except ServerUnavailableError as exc:  # a 500 beyond the allowance, or a 5xx that says nothing of later
            raise BatchRefused(str(exc).replace("the server", "the gateway", 1)) from exc
        return results, attempts - 1

    async def publish_stream(
        self,
        records: Iterable[tuple[str, bytes, bytes]],
        *,
        lanes: int = 4,
        batch_size: int = MAX_BATCH,
        on_batch: Callable[[Tally], None] | None = None,
    ) -> Tally:
        """Publish ``(department, citizen key, event JSON)`` records, in order per citizen; return the tally.

        ``on_batch`` is called after every answered batch (for progress bars).
        """
        if not 1 <= batch_size <= MAX_BATCH:
            raise ValueError(f"batch_size must be within 1..{MAX_BATCH}")
        tally = Tally()
        queues: list[asyncio.Queue[tuple[str, list[bytes]] | None]] = [asyncio.Queue(maxsize=2) for _ in range(lanes)]

        async def lane(queue: asyncio.Queue[tuple[str, list[bytes]] | None]) -> None:
            while (item := await queue.get()) is not None:
                department, values = item
                results, retries = await self._post(department, values)
                tally.add(results)
                tally.retries += retries
                if on_batch is not None:
                    on_batch(tally)

        workers = [asyncio.create_task(lane(q)) for q in queues]
        buffers: dict[tuple[int, str], list[bytes]] = {}
        try:
            for n, (department, key, value) in enumerate(records):
                slot = (zlib.crc32(key) % lanes, department)
                buffer = buffers.setdefault(slot, [])
                buffer.append(value)
                if len(buffer) >= batch_size:
                    await self._put(queues[slot[0]], (department, buffers.pop(slot)), workers)
                elif n % 256 == 0:
                    await asyncio.sleep(0)  # let the lanes read their answers while the records are generated
            for (lane_no, department), values in buffers.items():
                await self._put(queues[lane_no], (department, values), workers)
            for queue in queues:
                await self._put(queue, None, workers)
            await asyncio.gather(*workers)
        finally:
            for worker in workers:
                worker.cancel()
        return tally

    @staticmethod
    async def _put(
        queue: asyncio.Queue[tuple[str, list[bytes]] | None],
        item: tuple[str, list[bytes]] | None,
        workers: list[asyncio.Task[None]],
    ) -> None:
        # A lane that failed must stop the run instead of leaving the producer blocked on its full queue.
        put = asyncio.ensure_future(queue.put(item))
        done, _ = await asyncio.wait([put, *workers], return_when=asyncio.FIRST_COMPLETED)
        for worker in workers:
            if worker in done and worker.exception() is not None:
                put.cancel()
                raise worker.exception()  # type: ignore[misc]
        if put not in done:
            await put
