"""The judge client: one model behind a configured upstream, asked to score a prompt, with its limits.

It calls the upstream directly with the upstream's key through the proxy's own upstream client
(``proxy.upstream``: one pooled connection set, retries before the first byte on 429/502/503/504 and
timeouts, honouring Retry-After up to ``max_backoff``). It asks for structured output where the
provider has it: OpenAI's ``response_format`` JSON schema (OpenAI-compatible servers too: vLLM and
Ollama accept it), Anthropic's forced tool call; ``structured_output: text`` asks for JSON in the
text instead. At most ``concurrency`` calls run at once, each within ``timeout`` per attempt.

Every call is priced by genai_cost's price book and counted against the daily budget
(``connectors.genai_evaluation.budget``); a call that does not fit raises ``BudgetExhausted`` and
is not made.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from typing import Any

from collector.config.types import Duration
from connectors.genai_evaluation.answers import answer_instructions, answer_schema, read_answer
from connectors.genai_evaluation.budget import DailyBudget
from connectors.genai_evaluation.config import JudgeConfig
from connectors.genai_evaluation.result import JUDGE_ERROR, TIMEOUT, Outcome
from connectors.genai_evaluation.rubrics import Rubric
from processors.genai_cost.prices import PriceBook, Usage
from proxy.config import RetrySettings, TimeoutSettings, UpstreamConfig
from proxy.errors import ProxyError
from proxy.record import provider_error_kind
from proxy.upstream import UpstreamClient, UpstreamResponse, UpstreamTimeout, upstream_url

ANTHROPIC_VERSION = "2023-06-01"
ANSWER_NAME = "record_evaluation"  # the JSON schema's name (OpenAI), the forced tool's (Anthropic)
# Prompt tokens are estimated from characters before the call (the budget's reservation): fewer characters per
# token than any tokenizer gives for prose, so the estimate errs high.
CHARS_PER_TOKEN_ESTIMATE = 3
# The instructions and answer schema sent with every prompt, in characters, at most.
INSTRUCTIONS_CHARS_ESTIMATE = 1_000
# How much of an upstream's error body goes into the explanation.
# The most of a provider's error kind (code or type) a failed evaluation's explanation quotes.
ERROR_KIND_CHARS = 64


# A judge's answer is a short JSON object; a body beyond this is cut off and the evaluation fails.
MAX_ANSWER_BYTES = 1024 * 1024


class AnswerTooLarge(Exception):
    """The judge's response body is larger than MAX_ANSWER_BYTES."""


async def _bounded_body(response: UpstreamResponse) -> bytes:
    parts: list[bytes] = []
    size = 0
    async for chunk in response.chunks():
        size += len(chunk)
        if size > MAX_ANSWER_BYTES:
            raise AnswerTooLarge
        parts.append(chunk)
    return b"".join(parts)


class BudgetExhausted(Exception):
    """Today's judge budget cannot pay for this call; it was not made."""


@dataclass(frozen=True)
class JudgeCall:
    """One call to the judge, as its span records it."""

    model: str
    upstream: UpstreamConfig
    start_ns: int
    end_ns: int
    response_id: str = ""
    response_model: str = ""
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_usd: float | None = None
    error_type: str = ""


class JudgeClient:
    """Scores prompts with judge models; ``start`` and ``close`` on the event loop that runs the calls."""

    def __init__(
        self,
        config: JudgeConfig,
        prices: PriceBook,
        budget: DailyBudget,
    ) -> None:
        self._config = config
        self._prices = prices
        self._budget = budget
        self._client = UpstreamClient(
            TimeoutSettings(connect=config.timeout, read=config.timeout),
            RetrySettings(enabled=True, max_attempts=config.max_attempts, max_backoff=Duration(config.max_backoff)),
        )
        self._slots = asyncio.Semaphore(config.concurrency)

    def start(self) -> None:
        self._client.start()

    async def close(self) -> None:
        await self._client.close()

    def estimate_usd(self, model: str, prompt: str) -> float:
        """The most a call with ``prompt`` may cost (0 for a model without a known price)."""
        upstream = self._upstream(model)
        characters = len(prompt) + INSTRUCTIONS_CHARS_ESTIMATE
        usage = Usage(
            input_tokens=characters // CHARS_PER_TOKEN_ESTIMATE + 1, output_tokens=self._config.max_output_tokens
        )
        cost = self._prices.cost(upstream.provider_name, model, usage, time.time_ns())
        return cost.total if cost is not None else 0.0

    def _upstream(self, model: str) -> UpstreamConfig:
        upstream = self._config.upstream_for(model)
        if upstream is None:  # the config check makes sure every judged dimension's model is served
            raise ValueError(f'no upstream serves "{model}"')
        return upstream

    async def judge(self, model: str, rubric: Rubric, prompt: str) -> tuple[Outcome, JudgeCall]:
        """The judge's verdict on ``prompt`` and the call that gave it; raises BudgetExhausted when today's
        budget cannot pay for it (then no call is made)."""
        estimate = self.estimate_usd(model, prompt)
        if not self._budget.reserve(estimate):
            raise BudgetExhausted
        async with self._slots:
            # What the call cost when its usage says so; else (no usage reported, a failure the provider may
            # still bill) the estimate stays charged, so the budget holds for servers that report no usage.
            actual = estimate
            try:
                outcome, call = await self._call(model, rubric, prompt)
                if call.cost_usd is not None:
                    actual = call.cost_usd
            finally:
                self._budget.settle(estimate, actual)
        return outcome, call

    async def _call(self, model: str, rubric: Rubric, prompt: str) -> tuple[Outcome, JudgeCall]:
        upstream = self._upstream(model)
        evaluator = f"judge:{model}"
        path, headers, body = self._request(upstream, model, rubric, prompt)
        start = time.time_ns()

        def failed(error_type: str, reason: str) -> tuple[Outcome, JudgeCall]:
            call = JudgeCall(model, upstream, start, time.time_ns(), error_type=error_type)
            return Outcome(evaluator, explanation=reason, error_type=error_type), call

        try:
            response = await self._client.send("POST", upstream_url(upstream, path, b""), headers, body)
            try:
                raw = await _bounded_body(response)
            except AnswerTooLarge:
                response.abort()
                return failed(JUDGE_ERROR, f"the judge's answer is larger than {MAX_ANSWER_BYTES} bytes")
            except UpstreamTimeout:
                response.abort()
                return failed(TIMEOUT, "the judge stalled mid-answer")
            except Exception:
                response.abort()
                raise
            response.release()
        except ProxyError as exc:
            return failed(TIMEOUT if exc.status == 504 else JUDGE_ERROR, exc.message)
        except Exception as exc:  # noqa: BLE001 - a broken connection is this evaluation's error, not the connector's
            return failed(JUDGE_ERROR, f"the judge call failed: {type(exc).__name__}")
        try:
            document = json.loads(raw)
        except ValueError:
            document = None
        if response.status != 200:
            # The provider's error kind, never its message (the explanation is stored).
            kind = provider_error_kind(document)
            quoted = f": {kind[:ERROR_KIND_CHARS]}" if kind else ""
            return failed(JUDGE_ERROR, f"the judge answered HTTP {response.status}{quoted}")
        if not isinstance(document, dict):
            return failed(JUDGE_ERROR, "the judge's response is not a JSON object")
        answer, usage, response_id, response_model = _answer_of(upstream, document)
        cost = None
        if usage is not None:
            priced = self._prices.cost(upstream.provider_name, response_model or model, usage, start)
            cost = priced.total if priced is not None else None
        outcome = read_answer(answer, rubric, evaluator)
        call = JudgeCall(
            model=model,
            upstream=upstream,
            start_ns=start,
            end_ns=time.time_ns(),
            response_id=response_id,
            response_model=response_model,
            input_tokens=usage.input_tokens if usage else None,
            output_tokens=usage.output_tokens if usage else None,
            cost_usd=cost,
            error_type=outcome.error_type,
        )
        return outcome, call

    def _request(
        self, upstream: UpstreamConfig, model: str, rubric: Rubric, prompt: str
    ) -> tuple[bytes, list[tuple[bytes, bytes]], bytes]:
        """The path, headers and body of a judge call in the upstream's API."""
        mode = self._config.structured_output
        instructions = answer_instructions(rubric)
        schema = answer_schema(rubric)
        key = upstream.api_key.reveal().encode()
        headers = [(b"content-type", b"application/json")]
        body: dict[str, Any]
        if upstream.family == "anthropic":
            if key:
                headers.append((b"x-api-key", key))
            headers.append((b"anthropic-version", ANTHROPIC_VERSION.encode()))
            body = {
                "model": model,
                "max_tokens": self._config.max_output_tokens,
                "temperature": 0,
                "system": instructions,
                "messages": [{"role": "user", "content": prompt}],
            }
            if mode in ("auto", "tool"):
                body["tools"] = [{"name": ANSWER_NAME, "description": "Record the evaluation.", "input_schema": schema}]
                body["tool_choice"] = {"type": "tool", "name": ANSWER_NAME}
            return b"/v1/messages", headers, json.dumps(body).encode()
        if key:
            headers.append((b"authorization", b"Bearer " + key))
        body = {
            "model": model,
            "temperature": 0,
            "messages": [{"role": "system", "content": instructions}, {"role": "user", "content": prompt}],
        }
        # OpenAI's newer models take only max_completion_tokens; OpenAI-compatible servers know max_tokens.
        body["max_completion_tokens" if upstream.kind == "openai" else "max_tokens"] = self._config.max_output_tokens
        if mode in ("auto", "json_schema"):
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": ANSWER_NAME, "strict": True, "schema": schema},
            }
        return b"/v1/chat/completions", headers, json.dumps(body).encode()


def _answer_of(upstream: UpstreamConfig, document: dict[str, Any]) -> tuple[Any, Usage | None, str, str]:
    """The answer (a tool's input or the text), usage, response id and model of a successful response."""
    response_id = document.get("id") if isinstance(document.get("id"), str) else ""
    response_model = document.get("model") if isinstance(document.get("model"), str) else ""
    usage_document = document.get("usage") if isinstance(document.get("usage"), dict) else None
    answer: Any = None
    usage = None
    if upstream.family == "anthropic":
        content = document.get("content")
        blocks: list[Any] = content if isinstance(content, list) else []
        tools = [b.get("input") for b in blocks if isinstance(b, dict) and b.get("type") == "tool_use"]
        texts = [b.get("text", "") for b in blocks if isinstance(b, dict) and b.get("type") == "text"]
        answer = tools[0] if tools else "".join(t for t in texts if isinstance(t, str))
        if usage_document is not None:
            usage = Usage(
                input_tokens=_count(usage_document.get("input_tokens"))
                + _count(usage_document.get("cache_read_input_tokens"))
                + _count(usage_document.get("cache_creation_input_tokens")),
                output_tokens=_count(usage_document.get("output_tokens")),
                cache_read_tokens=_count(usage_document.get("cache_read_input_tokens")),
                cache_write_tokens=_count(usage_document.get("cache_creation_input_tokens")),
            )
    else:
        choices = document.get("choices") if isinstance(document.get("choices"), list) else []
        message = choices[0].get("message") if choices and isinstance(choices[0], dict) else None
        if isinstance(message, dict):
            calls = message.get("tool_calls")
            if isinstance(calls, list) and calls and isinstance(calls[0], dict):
                function = calls[0].get("function") or {}
                answer = function.get("arguments", "") if isinstance(function, dict) else ""
            else:
                answer = message.get("content") or message.get("refusal") or ""
        if usage_document is not None:
            usage = Usage(
                input_tokens=_count(usage_document.get("prompt_tokens")),
                output_tokens=_count(usage_document.get("completion_tokens")),
            )
    return answer, usage, response_id or "", response_model or ""


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0

