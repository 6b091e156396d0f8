"""The one retry policy of everything that sends events into renkou: ride out an outage, never retry a refusal.

``RetryPolicy`` is a tenacity policy: exponential backoff with full jitter (a random wait up to 0.5 s, 1 s, 2 s …
capped at 30 s, so that many clients coming back together do not stampede), a server's ``Retry-After`` honoured as
the least wait, and a total deadline (5 minutes by default; ``None`` for a daemon that waits as long as it runs),
after which ``GaveUpError`` says what was tried, how often and for how long, with the last error as its cause.

What is retried is decided by ``RetryPolicy.retryable``: an outage (``services.outages.is_outage``), a request
that never got an answer (``httpx`` connect, read and write errors, timeouts, a connection closed before the
answer), and an answer that says "later" (``ServerUnavailableError``: 502, 503, 504, and a plain 500 at most
``server_errors`` times, since an older server may still answer an outage 500). A 4xx — a refusal — never is.

Used by the gateway client (``services.publisher.gateway_client``, and so ``renkou simulate``), the publisher SDK
(``Publisher.publish``), the outbox relay and the simulator's own database work — and, with
``retryable=any_error``, by the loops that run as long as their service does, which retry whatever failed, a bug
included, rather than die silently: the view relay and the access-log relay (``DAEMON_RETRY``), the anchors (until
the next is due). A retried error that is not an outage is logged with its traceback.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final

import asyncpg
import httpx
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    retry_if_exception_type,
    stop_after_attempt,
    stop_before_delay,
    stop_never,
)
from tenacity.stop import stop_base
from tenacity.wait import wait_base, wait_random_exponential

from services.outages import describe, is_outage

__all__ = [
    "DAEMON_RETRY",
    "DEFAULT_DEADLINE_S",
    "LOCK_CONFLICTS",
    "GaveUpError",
    "RetryPolicy",
    "ServerUnavailableError",
    "any_error",
    "lock_conflicts",
    "retry_after_seconds",
]

log = logging.getLogger("renkou.retry")

DEFAULT_DEADLINE_S: Final = 300.0
_AGAIN_STATUSES: Final = frozenset({502, 503, 504})


class GaveUpError(RuntimeError):
    """Retried until the deadline (or until told to stop) without success; ``__cause__`` is the last error."""

    def __init__(self, what: str, attempts: int, seconds: float, last: BaseException | None) -> None:
        reason = describe(last) if last is not None else "no answer"
        super().__init__(f"{what}: gave up after {attempts} attempts in {seconds:.0f} s; last error: {reason}")
        self.what = what
        self.attempts = attempts
        self.seconds = seconds
        self.last = last


class ServerUnavailableError(Exception):
    """A server answered 5xx: ``status``, its ``Retry-After`` in seconds (if it said), the start of its body."""

    def __init__(self, status: int, text: str, retry_after_s: float | None = None) -> None:
        super().__init__(f"the server answered {status}: {text[:500]}")
        self.status = status
        self.text = text
        self.retry_after_s = retry_after_s


def retry_after_seconds(value: str | None) -> float | None:
    """A ``Retry-After`` header's delay in seconds (only the delay-seconds form; an HTTP date is ignored)."""
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return seconds if seconds >= 0 else None


_NEVER_ANSWERED: Final = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)


def any_error(exc: BaseException) -> bool:
    """``retryable`` for a loop that runs as long as its service: every error, never a cancellation (a
    ``BaseException``), so that stopping the service stops it."""
    return isinstance(exc, Exception)


def _expected(exc: BaseException) -> bool:
    """An error a retry exists for (an outage, no answer, a server saying "later"): logged without a traceback."""
    return isinstance(exc, (ServerUnavailableError, *_NEVER_ANSWERED)) or is_outage(exc)


@dataclass(frozen=True)
class RetryPolicy:
    """Backoff with jitter within a deadline; see the module's docstring."""

    deadline_s: float | None = DEFAULT_DEADLINE_S
    """Stop retrying once the next attempt would start after this many seconds; ``None``: never stop."""
    initial_s: float = 0.5
    """The first wait is up to this long; each next window doubles."""
    max_wait_s: float = 30.0
    """No wait is longer (a ``Retry-After`` included)."""
    server_errors: int = 2
    """A plain 500 is retried at most this many times in one call."""

    def retryable(self, also: Callable[[BaseException], bool] | None = None) -> Callable[[BaseException], bool]:
        """The decision for one call (it counts that call's 500s): outages, unanswered requests, 502/503/504,
        the first ``server_errors`` 500s, and whatever ``also`` accepts."""
        server_errors = 0

        def decide(exc: BaseException) -> bool:
            nonlocal server_errors
            if isinstance(exc, ServerUnavailableError):
                if exc.status in _AGAIN_STATUSES:
                    return True
                if exc.status == 500:
                    server_errors += 1
                    return server_errors <= self.server_errors
                return False
            if isinstance(exc, _NEVER_ANSWERED):
                return True
            return is_outage(exc) or (also is not None and also(exc))

        return decide

    def wait_s(self, attempt: int) -> float:
        """The wait after failed attempt number ``attempt`` (1 for the first) of a loop that retries by itself
        rather than through ``retrying`` (a consumer that rewinds and is handed the records again): the same
        jittered backoff."""
        state = RetryCallState(AsyncRetrying(), None, (), {})
        state.attempt_number = attempt
        return float(self._jitter()(state))

    def _jitter(self) -> wait_base:
        return wait_random_exponential(multiplier=self.initial_s, max=self.max_wait_s)

    def retrying(
        self,
        what: str,
        *,
        retryable: Callable[[BaseException], bool] | None = None,
        should_stop: Callable[[], bool] | None = None,
        sleep: Callable[[float], Awaitable[None]] | None = None,
        on_retry: Callable[[BaseException, float], None] | None = None,
    ) -> AsyncRetrying:
        """A tenacity ``AsyncRetrying`` for one call: ``await policy.retrying("sending X")(fn, *args)``.

        ``what`` names the work in the give-up message; ``retryable`` defaults to ``self.retryable()``;
        ``should_stop`` ends the retries early (a daemon asked to stop); ``sleep`` replaces ``asyncio.sleep``;
        ``on_retry(error, wait_s)`` is told before each wait (logging, progress displays).
        """
        stop: stop_base = stop_before_delay(self.deadline_s) if self.deadline_s is not None else stop_never
        if should_stop is not None:
            stop = stop | _StopWhen(should_stop)

        def before_sleep(state: RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome is not None else None
            wait_s = state.upcoming_sleep
            if error is not None:
                expected = _expected(error)
                log.log(
                    logging.INFO if expected else logging.WARNING,
                    "%s failed (%s); attempt %d, retrying in %.1f s",
                    what,
                    describe(error),
                    state.attempt_number,
                    wait_s,
                    exc_info=None if expected else error,
                )
                if on_retry is not None:
                    on_retry(error, wait_s)

        def give_up(state: RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome is not None else None
            raise GaveUpError(what, state.attempt_number, state.seconds_since_start or 0.0, error) from error

        return AsyncRetrying(
            retry=retry_if_exception(retryable or self.retryable()),
            wait=_Backoff(self),
            stop=stop,
            sleep=sleep or asyncio.sleep,
            before_sleep=before_sleep,
            retry_error_callback=give_up,
        )


DAEMON_RETRY: Final = RetryPolicy(deadline_s=None, max_wait_s=5.0)
"""The policy of a loop that runs as long as its service: no deadline, waits of at most 5 s (it is behind while it
waits)."""


LOCK_CONFLICTS: Final[tuple[type[BaseException], ...]] = (asyncpg.DeadlockDetectedError, asyncpg.SerializationError)
"""What a transaction gets when it lost a lock conflict to another: run it again."""


def lock_conflicts(
    attempts: int,
    conflicts: tuple[type[BaseException], ...] = LOCK_CONFLICTS,
    *,
    on_retry: Callable[[BaseException], None] | None = None,
) -> AsyncRetrying:
    """For a transaction that may lose a lock conflict to another (a deadlock, a serialization failure): run at
    most ``attempts`` times in all, after a short random wait each time (so that the two part), the conflict itself
    raised after the last; ``on_retry(error)`` is told before each wait."""

    def before_sleep(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome is not None else None
        if error is not None:
            log.info(
                "lost a lock conflict (%s); attempt %d, running the transaction again",
                describe(error),
                state.attempt_number,
            )
            if on_retry is not None:
                on_retry(error)

    return AsyncRetrying(
        retry=retry_if_exception_type(conflicts),
        stop=stop_after_attempt(attempts),
        wait=wait_random_exponential(multiplier=0.05, max=1.0),
        before_sleep=before_sleep,
        reraise=True,
    )


class _Backoff(wait_base):
    """Full-jitter exponential backoff, never shorter than the server's ``Retry-After``, never over the cap."""

    def __init__(self, policy: RetryPolicy) -> None:
        self.cap = policy.max_wait_s
        self.jitter = policy._jitter()

    def __call__(self, retry_state: RetryCallState) -> float:
        wait = float(self.jitter(retry_state))
        error = retry_state.outcome.exception() if retry_state.outcome is not None else None
        hinted = getattr(error, "retry_after_s", None)
        if isinstance(hinted, (int, float)):
            wait = max(wait, min(float(hinted), self.cap))
        return wait


class _StopWhen(stop_base):
    def __init__(self, condition: Callable[[], bool]) -> None:
        self.condition = condition

    def __call__(self, retry_state: RetryCallState) -> bool:
        return self.condition()
