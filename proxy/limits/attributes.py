"""Span attributes the limits set on a call's span, under the ``genai_collector.limits.`` namespace."""

from __future__ import annotations

# The scopes whose limits applied, e.g. ["key:key_0123456789ab", "tenant:acme"].
LIMITS_SCOPES = "genai_collector.limits.scopes"
# What the call was charged up front: estimated input tokens, and estimated USD (input plus the output bound).
LIMITS_ESTIMATED_TOKENS = "genai_collector.limits.estimated_tokens"
LIMITS_ESTIMATED_COST = "genai_collector.limits.estimated_cost_usd"
# The call was refused: over which limit (rpm, tpm, concurrency, daily_budget, monthly_budget), of which scope.
LIMITS_REFUSED = "genai_collector.limits.refused"
LIMITS_REFUSED_SCOPE = "genai_collector.limits.refused_scope"
# The model has no known price: budgets could not charge the call.
LIMITS_UNPRICED = "genai_collector.limits.unpriced"
# The shared store failed and on_store_error decided the call: "allow" or "deny".
LIMITS_STORE_ERROR = "genai_collector.limits.store_error"
