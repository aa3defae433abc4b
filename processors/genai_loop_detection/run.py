"""One open trace or conversation: its steps so far, and the checks each new span is put through.

A run holds a step per LLM call and per tool call, ordered by start time (spans
arrive out of order and across requests: a late one is slotted in where it
belongs). A tool call is one step whether it is seen as an LLM response asking
for it, as its ``execute_tool`` span, or both (merged by tool call id, or, when
the tool span has no id, with a call of the same name and arguments asked for
and not yet seen run: the latest asked for before the tool started, else the
earliest, as the clocks of the process that asked and the one that ran it may
disagree). ``observe`` takes the facts of one
span and returns the findings that span completes; each pattern is reported
once per run.
"""

from __future__ import annotations

import bisect
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Literal

from processors.genai_loop_detection.config import Budget, GenAiLoopDetectionConfig
from processors.genai_loop_detection.facts import SpanFacts, ToolCall
from processors.genai_loop_detection.patterns import cycle_at_end, near_identical, times_repeated

Scope = Literal["trace", "conversation"]
LOOP = "agent_loop"
BUDGET = "agent_budget"
ANALYSIS = "trace_analysis"


@dataclass(frozen=True)
class LoopFinding:
    detector: str
    category: str
    severity: str
    confidence: float
    details: dict[str, Any]


@dataclass(slots=True)
class Step:
    time: int  # start of the LLM call or tool span; for a tool call only seen as requested, the request's end
    label: int  # equal labels mean the same step repeated
    span_id: bytes
    call: ToolCall | None = None
    tokens: int = 0
    cost: float = 0.0

    def describe(self) -> str:
        return self.call.describe() if self.call is not None else "LLM call"


@dataclass(slots=True)
class _Pending:
    call: ToolCall
    requester: SpanFacts


@dataclass
class Run:
    scope: Scope
    config: GenAiLoopDetectionConfig
    budget: Budget
    steps: list[Step] = field(default_factory=list)
    llm_calls: list[SpanFacts] = field(default_factory=list)  # ordered by start
    calls_by_id: dict[str, Step] = field(default_factory=dict)
    executed_without_id: list[Step] = field(default_factory=list)
    # Asked for, no tool span seen yet (with or without an id), by call: where a tool span without an id belongs.
    not_run: dict[tuple[str, str], list[Step]] = field(default_factory=dict)
    pending: dict[str, _Pending] = field(default_factory=dict)  # asked for by a response, not run yet
    agents: list[tuple[int, int]] = field(default_factory=list)  # a trace's: (start, end) of its agent spans seen
    # A trace's pending calls asked for inside an agent whose span came first (exporters that send parents first):
    # judged once its spans stop arriving (``judge_late``), as nothing else in the run can end them.
    late: dict[str, None] = field(default_factory=dict)
    call_counts: Counter[tuple[str, str]] = field(default_factory=Counter)
    first_call: dict[tuple[str, str], Step] = field(default_factory=dict)
    failed: dict[tuple[str, str], int] = field(default_factory=dict)  # call -> end of its failed run
    responded: set[str] = field(default_factory=set)  # tool call ids whose results a request carried
    step_count: int = 0
    tokens: int = 0
    cost: float = 0.0
    label_counts: Counter[int] = field(default_factory=Counter)  # of the steps held
    reported: set[tuple[Any, ...]] = field(default_factory=set)
    dropped_steps: int = 0
    conversation: str | None = None  # a trace's: the one conversation its spans named so far
    conversations_named: int = 0  # capped at 2: one, or several

    def conversation_of(self, named: str | None) -> str | None:
        """The conversation of a span of this trace naming ``named``: its own, else the trace's if it has one."""
        if named:
            if self.conversations_named == 0:
                self.conversation, self.conversations_named = named, 1
            elif named != self.conversation:
                self.conversation, self.conversations_named = None, 2
            return named
        return self.conversation

    def observe(self, facts: SpanFacts) -> list[LoopFinding]:
        findings: list[LoopFinding] = []
        if facts.kind == "agent":
            findings.extend(self._unexecuted_at_agent_end(facts))
        elif facts.kind == "tool" and facts.tool_call is not None:
            findings.extend(self._tool_span(facts, facts.tool_call))
        elif facts.kind == "llm":
            findings.extend(self._llm_call(facts))
        if facts.kind != "agent":
            findings.extend(self._cycle(facts))
            findings.extend(self._budgets(facts))
        self._bound()
        return findings

    # Tool calls.

    def _tool_span(self, facts: SpanFacts, call: ToolCall) -> list[LoopFinding]:
        findings: list[LoopFinding] = []
        step = self.calls_by_id.get(call.call_id) if call.call_id else None
        if step is not None:
            self._ran(step)
        elif call.call_id is None:
            step = self._take_not_run(call.key, facts.start)
        if step is not None:  # a call a response asked for, now run: same step, at its real time
            if step.call is not None and step.call.call_id:
                self.pending.pop(step.call.call_id, None)
            self._move(step, facts.start)
        else:
            step = Step(facts.start, hash(("tool", call.key)), facts.span_id, call)
            if call.call_id:
                self.calls_by_id[call.call_id] = step
            else:
                self.executed_without_id.append(step)
            findings.extend(self._new_call(facts, step, call))
        if facts.error:
            self.failed.setdefault(call.key, facts.end)
            later = [s for s in self.steps if s.call is not None and s.call.key == call.key and s.time > facts.end]
            if later and self.config.ignored_tool_errors:
                findings.extend(self._ignored_error(facts, call, repeat=later[0]))
        return findings

    def _take_not_run(self, key: tuple[str, str], start: int) -> Step | None:
        """The asked-for call a tool span without an id ran: the latest asked for before it started, else the first."""
        asked = self.not_run.get(key)
        if not asked:
            return None
        before = [index for index, step in enumerate(asked) if step.time <= start]
        step = asked.pop(max(before, key=lambda index: asked[index].time) if before else 0)
        if not asked:
            del self.not_run[key]
        return step

    def _ran(self, step: Step) -> None:
        """``step``, asked for, has its tool span: no tool span without an id is its run any more."""
        if step.call is None:
            return
        asked = self.not_run.get(step.call.key, [])
        remaining = [other for other in asked if other is not step]
        if len(remaining) < len(asked):
            if remaining:
                asked[:] = remaining
            else:
                del self.not_run[step.call.key]

    def _new_call(self, facts: SpanFacts, step: Step, call: ToolCall) -> list[LoopFinding]:
        """Count a tool call seen for the first time; report when it is one too many."""
        findings: list[LoopFinding] = []
        self._insert(step)
        self.call_counts[call.key] += 1
        first = self.first_call.setdefault(call.key, step)
        if first.time > step.time:
            self.first_call[call.key] = first = step
        count = self.call_counts[call.key]
        if count >= self.config.repeated_tool_calls and self._first_report(("repeated_tool_call", call.key)):
            tokens, cost = self._spent_since(first.time)
            findings.append(
                LoopFinding(
                    "repeated_tool_call",
                    LOOP,
                    "high",
                    0.9,
                    self._loop_details(f"{call.describe()} x{count}", count, tokens, cost, first.span_id),
                )
            )
        failed_at = self.failed.get(call.key)
        if failed_at is not None and failed_at <= step.time and self.config.ignored_tool_errors:
            findings.extend(self._ignored_error(facts, call, repeat=step))
        return findings

    def _ignored_error(self, facts: SpanFacts, call: ToolCall, repeat: Step) -> list[LoopFinding]:
        if not self._first_report(("ignored_tool_error", call.key)):
            return []
        detail = f"{call.describe()} failed and was called again unchanged"
        return [
            LoopFinding("ignored_tool_error", ANALYSIS, "medium", 0.85, self._analysis_details(detail, repeat.span_id))
        ]

    # LLM calls.

    def llm_call(self, span_id: bytes) -> SpanFacts | None:
        """The LLM call of span ``span_id`` among the run's, if held."""
        return next((call for call in reversed(self.llm_calls) if call.span_id == span_id), None)

    def forget(self, llm_call: SpanFacts) -> None:
        """Take an LLM call's step out of the run (another record of the call takes its place)."""
        self.llm_calls = [call for call in self.llm_calls if call is not llm_call]
        step = next((s for s in self.steps if s.span_id == llm_call.span_id and s.call is None), None)
        if step is None:
            return
        self.steps.remove(step)
        self.label_counts[step.label] -= 1
        self.step_count -= 1
        self.tokens -= step.tokens
        self.cost -= step.cost

    def _llm_call(self, facts: SpanFacts) -> list[LoopFinding]:
        findings: list[LoopFinding] = []
        newest = facts.input_hashes[-1] if facts.input_hashes else hash(facts.span_id)  # unknown input: unique
        step = Step(facts.start, hash(("llm", facts.model, newest)), facts.span_id, tokens=facts.tokens)
        step.cost = facts.cost
        self._insert(step)
        self.tokens += facts.tokens
        self.cost += facts.cost
        for call_id in facts.responded_call_ids:
            self.pending.pop(call_id, None)
        self.responded.update(facts.responded_call_ids)
        if self.config.unexecuted_tool_calls:
            findings.extend(self._unexecuted_before(facts))
        for call in facts.requested_calls:
            findings.extend(self._requested(facts, call))
        findings.extend(self._repeated_request(facts))
        return findings

    def _requested(self, facts: SpanFacts, call: ToolCall) -> list[LoopFinding]:
        if call.call_id and call.call_id in self.calls_by_id:
            return []  # its tool span arrived first
        for index, executed in enumerate(self.executed_without_id):
            if executed.call is not None and executed.call.key == call.key and executed.time >= facts.end:
                del self.executed_without_id[index]
                if call.call_id:
                    self.calls_by_id[call.call_id] = executed
                return []
        step = Step(facts.end, hash(("tool", call.key)), facts.span_id, call)
        findings: list[LoopFinding] = []
        self.not_run.setdefault(call.key, []).append(step)  # its tool span, if it has no id, is matched by key
        if call.call_id:
            self.calls_by_id[call.call_id] = step
            pending = _Pending(call, facts)
            later_known = bool(self.llm_calls) and self.llm_calls[-1].start >= facts.end  # arrived out of order
            if later_known and self.config.unexecuted_tool_calls and self._went_on_without(pending):
                findings.extend(self._unexecuted(pending))  # the request that went on without it came first
            else:
                self.pending[call.call_id] = pending
                if any(start <= facts.start and facts.end <= end for start, end in self.agents):  # trace runs
                    self.late[call.call_id] = None
        return findings + self._new_call(facts, step, call)

    def _went_on_without(self, pending: _Pending) -> bool:
        asked = set(pending.requester.output_hashes)
        return (
            any(
                later.start >= pending.requester.end
                and later.input_hashes is not None
                and not asked.isdisjoint(later.input_hashes)
                for later in self.llm_calls
            )
            and pending.call.call_id not in self.responded
        )

    def _unexecuted_before(self, facts: SpanFacts) -> list[LoopFinding]:
        """Calls a response asked for that this later request goes on without (it carries the ask, not the result)."""
        if not facts.input_hashes:
            return []
        carried = set(facts.input_hashes)
        findings: list[LoopFinding] = []
        for call_id, pending in list(self.pending.items()):
            requester = pending.requester
            if requester.end > facts.start or not carried.intersection(requester.output_hashes):
                continue
            del self.pending[call_id]
            findings.extend(self._unexecuted(pending))
        return findings

    def _unexecuted_at_agent_end(self, agent: SpanFacts) -> list[LoopFinding]:
        findings: list[LoopFinding] = []
        if self.scope == "trace":  # a conversation's agent spans are its turns: each in its own trace
            self.agents.append((agent.start, agent.end))
        if not self.config.unexecuted_tool_calls:
            return findings
        for call_id, pending in list(self.pending.items()):
            if agent.start <= pending.requester.start and pending.requester.end <= agent.end:
                del self.pending[call_id]
                findings.extend(self._unexecuted(pending))
        return findings

    def judge_late(self) -> list[tuple[SpanFacts, list[LoopFinding]]]:
        """The calls asked for after their agent's span came that are still pending: never run. By requester."""
        judged: list[tuple[SpanFacts, list[LoopFinding]]] = []
        for call_id in self.late:
            pending = self.pending.pop(call_id, None)
            if pending is not None and self.config.unexecuted_tool_calls:
                findings = self._unexecuted(pending)
                if findings:
                    judged.append((pending.requester, findings))
        self.late.clear()
        return judged

    def _unexecuted(self, pending: _Pending) -> list[LoopFinding]:
        call = pending.call
        if not self._first_report(("unexecuted_tool_call", call.call_id)):
            return []
        detail = f"tool call {call.call_id} {call.describe()} was asked for and never ran"
        details = self._analysis_details(detail, pending.requester.span_id)
        return [LoopFinding("unexecuted_tool_call", ANALYSIS, "medium", 0.8, details)]

    def _repeated_request(self, facts: SpanFacts) -> list[LoopFinding]:
        calls = self.llm_calls
        index = bisect.bisect_right(calls, facts.start, key=lambda c: c.start)
        calls.insert(index, facts)
        first = index
        while first > 0 and _same_request(calls[first - 1], calls[first]):
            first -= 1
        last = index
        while last + 1 < len(calls) and _same_request(calls[last], calls[last + 1]):
            last += 1
        length = last - first + 1
        chain = calls[first : last + 1]
        if length < self.config.repeated_requests:
            return []
        # A chain is one incident however it grows (late spans can extend it at either end); ``_bound``
        # keeps these marks from growing without end in a run that never stops repeating itself.
        members = {("repeated_request", call.span_id) for call in chain}
        if not members.isdisjoint(self.reported):
            self.reported.update(members)
            return []
        self.reported.update(members)
        tokens, cost = sum(c.tokens for c in chain), sum(c.cost for c in chain)
        pattern = f"{length} near-identical requests to {facts.model or 'the model'}"
        details = self._loop_details(pattern, length, tokens, cost, calls[first].span_id)
        return [LoopFinding("repeated_request", LOOP, "medium", 0.8, details)]

    # Whole-run checks.

    def _cycle(self, facts: SpanFacts) -> list[LoopFinding]:
        """A block of steps repeating at the end of the run: among tool calls alone, else among all steps.

        Tool calls alone show A, B, A, B as soon as the calls repeat, whatever the LLM calls between them
        read; all steps show agents that loop without tools (two LLM calls bouncing the same messages).
        A block around a single tool call is left to the repeated-call check.
        """
        config = self.config
        if not self.steps or self.label_counts[self.steps[-1].label] < config.cycle_repetitions:
            return []  # a cycle ending here repeats its last step: most spans stop at this count
        window = self.steps[-config.max_cycle_length * config.cycle_repetitions * 4 :]
        for steps in ([step for step in window if step.call is not None], window):
            labels = [step.label for step in steps]
            length = cycle_at_end(labels, config.max_cycle_length, config.cycle_repetitions)
            if length is None:
                continue
            block = steps[-length:]
            if len({step.call.key for step in block if step.call is not None}) == 1:
                continue  # one tool call again and again, with its LLM calls: a repeated call, reported as such
            signature = min(tuple(step.label for step in block[i:] + block[:i]) for i in range(length))
            if not self._first_report(("call_cycle", signature)):
                return []
            repetitions = times_repeated(labels, length)
            first = steps[-length * repetitions]
            tokens, cost = self._spent_since(first.time)
            pattern = " -> ".join(step.describe() for step in block)
            details = self._loop_details(pattern, repetitions, tokens, cost, first.span_id)
            return [LoopFinding("call_cycle", LOOP, "high", 0.85, details)]
        return []

    def _budgets(self, facts: SpanFacts) -> list[LoopFinding]:
        budget = self.budget
        over: list[tuple[str, float, float]] = []
        if 0 < budget.max_steps < self.step_count:
            over.append(("steps", self.step_count, budget.max_steps))
        if 0 < budget.max_tokens < self.tokens:
            over.append(("tokens", self.tokens, budget.max_tokens))
        if 0 < budget.max_cost < self.cost:
            over.append(("cost", self.cost, budget.max_cost))
        findings: list[LoopFinding] = []
        for kind, value, limit in over:
            if self._first_report(("budget", kind)):
                details = {
                    "gen_ai.security.loop.scope": self.scope,
                    "gen_ai.security.budget.kind": kind,
                    "gen_ai.security.budget.limit": limit,
                    "gen_ai.security.budget.value": value,
                }
                findings.append(LoopFinding(f"{kind.removesuffix('s')}_budget", BUDGET, "medium", 1.0, details))
        return findings

    # Bookkeeping.

    def _insert(self, step: Step) -> None:
        bisect.insort(self.steps, step, key=_time)
        self.label_counts[step.label] += 1
        self.step_count += 1

    def _move(self, step: Step, time: int) -> None:
        if step.time == time:
            return
        self.steps.remove(step)
        step.time = time
        bisect.insort(self.steps, step, key=_time)

    def _spent_since(self, time: int) -> tuple[int, float]:
        spent = [step for step in self.steps if step.time >= time]
        return sum(s.tokens for s in spent), sum(s.cost for s in spent)

    def _first_report(self, signature: tuple[Any, ...]) -> bool:
        if signature in self.reported:
            return False
        self.reported.add(signature)
        return True

    def _loop_details(self, pattern: str, repetitions: int, tokens: int, cost: float, first: bytes) -> dict[str, Any]:
        return {
            "gen_ai.security.loop.scope": self.scope,
            "gen_ai.security.loop.pattern": pattern,
            "gen_ai.security.loop.repetitions": repetitions,
            "gen_ai.security.loop.tokens": tokens,
            "gen_ai.security.loop.cost": round(cost, 6),
            "gen_ai.security.loop.first_span_id": first.hex(),
        }

    def _analysis_details(self, detail: str, related_span: bytes) -> dict[str, Any]:
        return {
            "gen_ai.security.loop.scope": self.scope,
            "gen_ai.security.analysis.detail": detail,
            "gen_ai.security.analysis.related_span_id": related_span.hex(),
        }

    def _bound(self) -> None:
        """Forget the oldest steps beyond ``max_steps`` (counts and totals stay)."""
        limit = self.config.max_steps
        excess = len(self.steps) - limit
        if excess > 0:
            forgotten = {id(step) for step in self.steps[:excess]}
            self.label_counts.subtract(step.label for step in self.steps[:excess])
            del self.steps[:excess]
            self.calls_by_id = {k: s for k, s in self.calls_by_id.items() if id(s) not in forgotten}
            self.executed_without_id = [s for s in self.executed_without_id if id(s) not in forgotten]
            self.not_run = {
                key: kept
                for key, steps in self.not_run.items()
                if (kept := [s for s in steps if id(s) not in forgotten])
            }
            self.first_call = {k: s for k, s in self.first_call.items() if id(s) not in forgotten}
            self.dropped_steps += excess
        if len(self.llm_calls) > limit:
            del self.llm_calls[: len(self.llm_calls) - limit]
        while len(self.pending) > limit:
            del self.pending[next(iter(self.pending))]
        if len(self.agents) > limit:
            del self.agents[: len(self.agents) - limit]
        while len(self.late) > limit:
            del self.late[next(iter(self.late))]
        if len(self.failed) > limit:
            self.failed.clear()  # a very long run of distinct failing calls: older failures are forgotten
        if len(self.reported) > limit * 4:
            self.reported.clear()  # a very long run: a pattern reported long ago may be reported again
        if len(self.responded) > limit * 4:
            self.responded.clear()  # rare: only a very long run; unexecuted calls before this point go unseen
        if len(self.call_counts) > limit:
            for key in [key for key, count in self.call_counts.items() if count == 1][: len(self.call_counts) - limit]:
                del self.call_counts[key]


def _time(step: Step) -> int:
    return step.time


def _same_request(previous: SpanFacts, current: SpanFacts) -> bool:
    return previous.model == current.model and near_identical(previous.input_hashes, current.input_hashes)
