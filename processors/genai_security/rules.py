"""The built-in detectors, as data: an id, a category, a severity, a confidence, an RE2 pattern, a check.

Every pattern is compiled with RE2, whose matching time is linear in the text
whatever the pattern (no backtracking), so hostile input cannot stall a scan;
user rules go through the same engine. A pattern's first group (or the whole
match) is the sensitive value; the check, when there is one, must accept it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import re2

from processors.genai_security import validators

Category = Literal["secret", "personal_data", "prompt_injection"]
Severity = Literal["low", "medium", "high", "critical"]
Role = Literal["user", "assistant", "tool", "system"]

PATTERN_OPTIONS = re2.Options()
PATTERN_OPTIONS.max_mem = 64 << 20  # large alternations need more than RE2's default 8 MiB
PATTERN_OPTIONS.log_errors = False  # a bad user pattern is reported as one config line, not on stderr


def compile_pattern(pattern: str) -> re2._Regexp:
    """An RE2 pattern; raises re2.error with the engine's reason when it is not valid RE2."""
    return re2.compile(pattern, PATTERN_OPTIONS)


@dataclass(frozen=True)
class Rule:
    id: str
    category: Category
    severity: Severity
    confidence: float
    pattern: re2._Regexp
    check: Callable[[str], bool] | None = None
    # Only content from these roles is scanned by this rule (None: every role).
    roles: frozenset[str] | None = None


def _rule(
    id: str,
    category: Category,
    severity: Severity,
    confidence: float,
    pattern: str,
    check: Callable[[str], bool] | None = None,
    roles: tuple[Role, ...] | None = None,
) -> Rule:
    return Rule(
        id, category, severity, confidence, compile_pattern(pattern), check, frozenset(roles) if roles else None
    )


_INSTRUCTION_OVERRIDE = (
    r"(?i)(?:\b(?:ignore|disregard|forget|bypass|skip|stop following|do not (?:obey|follow)"
    r"|don't (?:obey|follow)|abandon)\b[^.\n]{0,40}?"
    r"\b(?:previous|prior|above|earlier|preceding|all|any|the|your|system|original|given)\b[^.\n]{0,30}?"
    r"\b(?:instructions?|prompts?|rules|directions|guidelines|directives|guardrails|context)\b"
    r"|\bforget (?:everything|all|what) (?:you (?:were|have been) told|above|before|previously)"
    r"|\b(?:your|the) (?:previous|prior|earlier|original) (?:instructions|guidelines|rules|directives)"
    r" (?:are|is) (?:now )?(?:void|cancelled|canceled|revoked|no longer (?:valid|in effect|apply))"
    r"|\boverride (?:your|all|any|the system|previous|prior) (?:previous |prior |safety |system )?(?:instructions|rules|guidelines|prompt)"
    r"|\b(?:earlier|previous|prior) instructions (?:were|are) (?:a test|fake|void|wrong)"
    r"|\bignorez? (?:toutes )?les instructions (?:précédentes|antérieures)"
    r"|\bvergiss (?:alle )?(?:vorherigen|bisherigen|obigen) (?:Anweisungen|Instruktionen|Regeln)"
    r"|\bignora (?:todas )?las instrucciones (?:anteriores|previas))"
)
_INSTRUCTION_OVERRIDE_RE = compile_pattern(_INSTRUCTION_OVERRIDE)


def instruction_override_in(text: str) -> bool:
    return _INSTRUCTION_OVERRIDE_RE.search(text) is not None


BUILTIN_RULES: tuple[Rule, ...] = (
    # Secrets. Provider-specific shapes first: an overlapping generic match is dropped in their favour.
    _rule("private_key", "secret", "critical", 0.99,
          r"(?s)(-----BEGIN [A-Z ]{0,24}PRIVATE KEY(?: BLOCK)?-----.{0,300}?[A-Za-z0-9+/]{40,}.*?-----END [A-Z ]{0,24}PRIVATE KEY(?: BLOCK)?-----)"),
    _rule("gcp_service_account", "secret", "critical", 0.95,
          r"(?s)(\"type\"\s*:\s*\"service_account\".{0,1000}?\"private_key\")\s*:\s*\"-----BEGIN"),
    _rule("aws_access_key_id", "secret", "high", 0.95, r"\b((?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16})\b"),
    _rule("aws_secret_access_key", "secret", "critical", 0.9,
          r"(?i)(?:aws_?)?secret_?access_?key[\"']?\s*[:=]\s*[\"']?([A-Za-z0-9/+]{40})\b"),
    _rule("gcp_api_key", "secret", "high", 0.95, r"\b(AIza[0-9A-Za-z_\-]{35})"),
    _rule("azure_storage_connection_string", "secret", "critical", 0.95,
          r"(DefaultEndpointsProtocol=https?;AccountName=[^;\s]+;AccountKey=[A-Za-z0-9+/=]{40,})"),
    _rule("anthropic_api_key", "secret", "critical", 0.99, r"\b(sk-ant-(?:api|admin)\d{2}-[A-Za-z0-9_\-]{20,})"),
    _rule("openai_api_key", "secret", "critical", 0.95,
          r"\b(sk-(?:proj|svcacct|admin)-[A-Za-z0-9_\-]{20,}|sk-[A-Za-z0-9]{32,})"),
    _rule("github_token", "secret", "high", 0.99, r"\b((?:ghp|gho|ghs|ghu|ghr)_[A-Za-z0-9]{36}|github_pat_[A-Za-z0-9_]{50,})"),
    _rule("slack_webhook", "secret", "high", 0.99,
          r"(https://hooks\.slack\.com/services/T[A-Z0-9]{8,}/B[A-Z0-9]{8,}/[A-Za-z0-9]{20,})"),
    _rule("slack_token", "secret", "high", 0.95, r"\b(xox[baprs]-\d{6,}-[A-Za-z0-9-]{8,}|xapp-\d-[A-Z0-9]{6,}-[A-Za-z0-9-]{8,})"),
    _rule("stripe_key", "secret", "high", 0.95, r"\b((?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,})"),
    # This collector's own keys (genai-collector keys create: proxy gcx-, API gca_; the local admin token gct_),
    # also cut short: 16 characters already identify one.
    _rule("genai_collector_proxy_key", "secret", "critical", 0.99, r"\b(gcx-[A-Za-z0-9_\-]{16,}|gc[at]_[A-Za-z0-9_\-]{16,})"),
    _rule("jwt", "secret", "high", 0.9,
          r"\b(eyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{10,})", validators.jwt),
    _rule("generic_secret", "secret", "high", 0.7,
          r"(?i)[A-Za-z0-9_]*(?:password|passwd|pwd|secret|api[_-]?key|apikey|access[_-]?token|auth[_-]?token|token"
          r"|client[_-]?secret|private[_-]?key)(?:_?(?:key|token|value))?[\"']?\s*[:=]\s*[\"']?([^\s\"',;$]{8,})",
          validators.high_entropy),
    # Personal data.
    _rule("email", "personal_data", "medium", 0.95, r"\b([A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,})\b"),
    _rule("iban", "personal_data", "medium", 0.95, r"\b([A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?)\b",
          validators.iban),
    # An IBAN-like prefix is part of the match so that the check can reject it: such digits are an account.
    _rule("payment_card", "personal_data", "high", 0.95, r"\b((?:[A-Z]{2}\d{2} )?(?:\d[ -]?){12,18}\d)\b",
          validators.payment_card),
    _rule("us_ssn", "personal_data", "high", 0.85, r"\b(\d{3}-\d{2}-\d{4})\b", validators.us_ssn),
    _rule("phone", "personal_data", "medium", 0.7,
          r"(\+\d{1,3}[ .-]?\(?\d{1,4}\)?(?:[ .-]?\d{2,4}){2,4}|\(\d{3}\) ?\d{3}[ .-]\d{4}|\b\d{3}[.-]\d{3}[.-]\d{4}\b)",
          lambda value: 10 <= sum(c.isdigit() for c in value) <= 15),
    _rule("ip_address", "personal_data", "low", 0.8,
          # Greedy on purpose: an OID 1.3.6.1.4 or 2001:db8:::1 is taken whole, and the check refuses it.
          r"\b((?:\d{1,3}\.){3}\d{1,3}(?:\.\d+)*|(?:[0-9A-Fa-f]{0,4}:){2,8}[0-9A-Fa-f]{0,4})",
          validators.ip_address),
    # Prompt injection.
    _rule("tool_result_injection", "prompt_injection", "high", 0.75,
          r"(?im)(\b(?:assistant|AI|model|chatbot|agent|LLM|ChatGPT|Claude|Copilot)s?\b[,:]?\s{0,3}(?:you must|you should|now|please|also|then|when you read this,?)?\s{0,3}"
          r"(?:ignore|disregard|forget|send|forward|email|upload|exfiltrate|do not tell|don't tell|reveal|cancel|delete|run|execute)\b"
          r"|\b(?:IMPORTANT|SYSTEM|INSTRUCTION)S?\s*[:\]]\s*[^\n]{0,120}?\b(?:ignore|disregard|send|forward|upload|reveal|assistant|instruction)\b"
          r"|\b(?:note|instructions?|message|request)s? (?:to|for) (?:the |any |all )?(?:AI|assistant|agent|model|LLM|chatbot)s?\b"
          r"|\b(?:AI|assistant|agent|model) (?:processing|reading|screening|summari[sz]ing|reviewing) this\b"
          r"|\b(?:dear|hey|hi|attention) (?:AI |LLM )?(?:assistant|agent|model)\b)",
          roles=("tool",)),
    _rule("instruction_override", "prompt_injection", "high", 0.8, _INSTRUCTION_OVERRIDE),
    _rule("instruction_override", "prompt_injection", "high", 0.75,
          r"(?i)\b(?:new|updated) (?:rule ?set|rules|instructions)\b[^\n]{0,60}?\b(?:supersedes?|replaces?|overrides?)\b"),
    _rule("roleplay_jailbreak", "prompt_injection", "high", 0.8,
          r"(?i)(\b(?:you are now|from now on,? you are|you are|act as|pretend (?:to be|you are|that you are|you have)|imagine you are|play(?:ing)? the role of|respond (?:to every prompt )?(?:twice|as))\b"
          r"[^.\n]{0,80}?(?:\bDAN\b|do anything now|no (?:ethical |moral )?(?:restrictions|limits|rules|filters|guidelines)|unrestricted|unfiltered"
          r"|jailbroken|jailbreak|never refuses|free of all restrictions|without (?:any )?(?:moral |ethical )?(?:restrictions|limits|rules|filters|guidelines)"
          r"|(?:safety )?filters (?:switched |turned )?off|evil AI|Machiavellian)"
          r"|\bDAN\b[^.\n]{0,40}?do anything now|\bdeveloper mode (?:enabled|activated)\b|\bwith developer mode\b"
          r"|\bact as my (?:deceased |late |dead )?grand(?:mother|ma|father|pa)\b)"),
    _rule("encoded_payload", "prompt_injection", "high", 0.85,
          r"([A-Za-z0-9+/]{24,}={0,2}|(?:[0-9a-fA-F]{2}){12,}|(?:\\x[0-9a-fA-F]{2}){12,}|(?:[0-9a-fA-F]{2} ){11,}[0-9a-fA-F]{2}"
          r"|(?:[\pL ][\x{200B}-\x{200D}\x{2060}\x{FEFF}]+){6,}[\pL ]?)",
          validators.decodes_to_instruction),
    _rule("hidden_characters", "prompt_injection", "medium", 0.8,
          r"((?:\pL[\x{200B}-\x{200D}\x{2060}\x{FEFF}]+){3,})"),
    _rule("markdown_exfiltration", "prompt_injection", "high", 0.85,
          r"(!\[[^\]\n]{0,200}\]\(https?://[^)\s]+\?[^)\s]*=[^)\s&]{20,}[^)\s]*\)"
          r"|\[[^\]\n]{0,200}\]\(https?://[^)\s]+\?[^)\s]*=[^)\s&]{32,}[^)\s]*\)"
          r"|(?m:^)\[[^\]\n]{1,40}\]: *https?://\S+\?\S*=[^\s&]{20,}"
          r"|<img [^>]{0,200}src=[\"']https?://[^\"'\s]+\?[^\"'\s]*=[^\"'\s&]{20,})",
          roles=("assistant",)),
)  # fmt: skip
