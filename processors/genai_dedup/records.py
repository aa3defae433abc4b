"""What genai_dedup holds under a response id, and how a record is held and taken, in a worker or the main process."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar

from collector.expiring import ExpiringMap

# Records held under one response id: a provider's ids are unique, but a server that numbers its ids from a
# small range repeats them; the oldest compatible record is taken first, so each record pairs with one other.
MAX_RECORDS_PER_RESPONSE_ID = 8


class _HasModel(Protocol):
    @property
    def model(self) -> str: ...


R = TypeVar("R", bound=_HasModel)


@dataclass(frozen=True, slots=True)
class ResponseIdRecord:
    """A record of a call that counts, held by its response id: its span id, and its request model."""

    span_id: bytes
    model: str


def take_record(held: ExpiringMap[str, list[R]], response_id: str, model: str) -> R | None:
    """The oldest record held under ``response_id`` whose request model agrees with ``model``; None."""
    records = held.get(response_id)
    if records is None:
        return None
    for index, record in enumerate(records):
        if not record.model or not model or record.model == model:
            del records[index]
            if not records:
                held.pop(response_id)
            return record
    return None


def hold_record(held: ExpiringMap[str, list[R]], response_id: str, record: R, overflow: Callable[[], None]) -> None:
    """Hold ``record`` under ``response_id``, after the others there; ``overflow`` hears when the oldest goes."""
    records = held.get(response_id) or []
    records.append(record)
    if len(records) > MAX_RECORDS_PER_RESPONSE_ID:
        del records[0]
        overflow()
    held.put(response_id, records)
