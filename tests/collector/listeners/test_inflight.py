"""A listener's budget of request bytes in flight: shares taken, resized, refused and given back."""

from __future__ import annotations

import pytest

from collector.listeners.generated_metrics import LISTENER_BYTES_IN_FLIGHT, LISTENER_REQUESTS_REFUSED
from collector.listeners.inflight import OVERLOADED_RETRY_AFTER_SECONDS, InFlightBudget, Overloaded
from collector.listeners.metrics import IN_FLIGHT, ListenerMetrics
from collector.telemetry import Telemetry


def test_shares_are_held_together_and_given_back_when_their_requests_end() -> None:
    telemetry = Telemetry()
    budget = InFlightBudget(100, ListenerMetrics(telemetry, "otlp", "http"))

    with budget.admit() as first, budget.admit() as second:
        first.take(60)
        second.take(40)
        assert telemetry.value(LISTENER_BYTES_IN_FLIGHT.name, listener="otlp", transport="http") == 100
        with budget.admit() as third, pytest.raises(Overloaded) as refused:
            third.take(1)
        assert third.size == 0
    assert budget.in_use == 0
    assert refused.value.retry_after == OVERLOADED_RETRY_AFTER_SECONDS
    assert "100 of its 100 bytes" in str(refused.value)
    assert telemetry.value(LISTENER_REQUESTS_REFUSED.name, listener="otlp", transport="http", reason=IN_FLIGHT) == 1


def test_a_share_reserved_at_its_largest_shrinks_to_what_arrived() -> None:
    budget = InFlightBudget(10)

    with budget.admit() as share:
        share.take(8)  # a message may be this large until it is read
        share.resize(3)
        assert budget.in_use == 3
        with budget.admit() as other:
            other.take(7)
        share.resize(9)
        assert budget.in_use == 9
        with pytest.raises(Overloaded):
            share.resize(11)
        assert share.size == 9
    assert budget.in_use == 0
