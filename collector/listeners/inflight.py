"""A listener's budget of request bytes in flight, shared by its concurrent requests.

Each request takes its share before it reads (the declared Content-Length, or a
gRPC message's largest size) or as it reads, and gives it back once answered.
A share the budget cannot grant is refused at once with ``Overloaded``: the
listener answers a retryable "try again shortly" in its protocol's terms, and
holds nothing for the refused request. Memory for request data is then bounded
by the budget however many clients send at once.
"""

from __future__ import annotations

from types import TracebackType

from collector.listeners.metrics import IN_FLIGHT, ListenerMetrics

# Short: a share frees up as soon as a request in flight is answered.
OVERLOADED_RETRY_AFTER_SECONDS = 1.0


class Overloaded(Exception):
    """The listener holds as many request bytes as it may; the client should retry after ``retry_after`` seconds."""

    def __init__(self, message: str, retry_after: float = OVERLOADED_RETRY_AFTER_SECONDS) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class InFlightBudget:
    """``limit`` bytes shared by one listener's requests; all on one event loop, so no lock."""

    def __init__(self, limit: int, metrics: ListenerMetrics | None = None) -> None:
        self.limit = limit
        self.in_use = 0
        self._metrics = metrics
        if metrics is not None:
            metrics.watch_bytes_in_flight(lambda: float(self.in_use))

    def admit(self) -> Share:
        """A new request's share, empty until it takes bytes; use it as a context manager to give it back."""
        return Share(self)

    def _grow(self, amount: int) -> None:
        if self.in_use + amount > self.limit:
            if self._metrics is not None:
                self._metrics.request_refused(IN_FLIGHT)
            raise Overloaded(
                f"the server holds {self.in_use} of its {self.limit} bytes of requests in flight; retry shortly"
            )
        self.in_use += amount

    def _shrink(self, amount: int) -> None:
        self.in_use -= amount


class Share:
    """The bytes one request holds of its listener's budget."""

    def __init__(self, budget: InFlightBudget) -> None:
        self._budget = budget
        self.size = 0

    def take(self, amount: int) -> None:
        """Hold ``amount`` more bytes, or raise Overloaded (holding nothing more)."""
        self._budget._grow(amount)
        self.size += amount

    def resize(self, size: int) -> None:
        """Hold exactly ``size`` bytes: less once a request turns out smaller than reserved, or more (may raise)."""
        if size > self.size:
            self.take(size - self.size)
        else:
            self._budget._shrink(self.size - size)
            self.size = size

    def release(self) -> None:
        self._budget._shrink(self.size)
        self.size = 0

    def __enter__(self) -> Share:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.release()
