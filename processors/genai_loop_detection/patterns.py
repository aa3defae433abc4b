"""The shapes of a stuck agent, as pure functions over step labels and message hashes.

- A cycle: the newest steps are one block of two or more distinct steps, repeated.
- A near-identical request: an LLM request that adds nothing new to the one before it
  (the same messages, or the same messages plus turns that only repeat earlier ones).
"""

from __future__ import annotations

from collections.abc import Sequence


def cycle_at_end(labels: Sequence[int], max_length: int, repetitions: int) -> int | None:
    """The length of the shortest block that the end of ``labels`` repeats ``repetitions`` times, if any.

    Blocks of one step are not cycles (that is a repeated call); a block needs two distinct steps.
    """
    for length in range(2, max_length + 1):
        span = length * repetitions
        if span > len(labels):
            break
        block = labels[-length:]
        if len(set(block)) < 2:
            continue
        tail = labels[-span:]
        if all(tail[i] == block[i % length] for i in range(span)):
            return length
    return None


def times_repeated(labels: Sequence[int], length: int) -> int:
    """How many times the last ``length`` labels repeat, counting back from the end."""
    block = labels[-length:]
    count = 0
    end = len(labels)
    while end - length >= 0 and list(labels[end - length : end]) == list(block):
        count += 1
        end -= length
    return count


def near_identical(previous: tuple[int, ...] | None, current: tuple[int, ...] | None) -> bool:
    """Whether request ``current`` brings nothing new after ``previous`` (both as message hashes).

    True for the same messages; for the previous messages plus turns that all repeat earlier
    ones (an agent re-asking, re-running the same tool, getting the same result); and for the
    previous messages with the newest turn replaced by a repeat of an earlier one.
    """
    if not previous or not current:
        return False
    if current == previous:
        return True
    seen = set(previous)
    if len(current) > len(previous) and current[: len(previous)] == previous:
        return all(message in seen for message in current[len(previous) :])
    if len(current) == len(previous) and current[:-1] == previous[:-1]:
        return current[-1] in seen
    return False
