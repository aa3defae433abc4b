"""Spans and certificates the OTLP exporter tests share: a span with every field set, how to read it back, TLS files."""

from __future__ import annotations

import datetime
import ipaddress
import logging
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import text_format
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status, TracesData

from collector.pdata import set_any_value

DEBUG_LOGGER = "genai_collector.exporter.debug"


def every_field_traces() -> TracesData:
    """One span with every OTLP field set, under a resource and scope with every field set."""
    traces = TracesData()
    resource_spans = traces.resource_spans.add(schema_url="https://opentelemetry.io/schemas/1.30.0")
    resource_spans.resource.dropped_attributes_count = 1
    set_attributes(resource_spans.resource.attributes, {"service.name": "support-bot", "host.cores": 8})
    scope_spans = resource_spans.scope_spans.add(schema_url="https://opentelemetry.io/schemas/1.29.0")
    scope_spans.scope.name = "opentelemetry.instrumentation.openai_v2"
    scope_spans.scope.version = "2.1b0"
    scope_spans.scope.dropped_attributes_count = 2
    set_attributes(scope_spans.scope.attributes, {"scope.flag": True})
    span = scope_spans.spans.add(
        trace_id=bytes(range(16)),
        span_id=bytes(range(8)),
        parent_span_id=bytes(range(8, 16)),
        trace_state="vendor=value,other=1",
        flags=0x301,
        name="chat gpt-4o",
        kind=Span.SPAN_KIND_CLIENT,
        start_time_unix_nano=1_700_000_000_123_456_789,
        end_time_unix_nano=1_700_000_001_987_654_321,
        dropped_attributes_count=3,
        dropped_events_count=4,
        dropped_links_count=5,
        status=Status(code=Status.STATUS_CODE_ERROR, message="upstream timed out"),
    )
    set_attributes(
        span.attributes,
        {
            "gen_ai.request.model": "gpt-4o",
            "gen_ai.usage.input_tokens": 42,
            "gen_ai.request.temperature": 0.7,
            "gen_ai.is_streaming": False,
            "raw": b"\x00\xff\x10",
            "gen_ai.response.finish_reasons": ["stop", "length"],
            "unicode": "héllo ✓ 日本",
        },
    )
    nested = span.attributes.add(key="nested")
    inner = nested.value.kvlist_value.values.add(key="inner")
    inner.value.array_value.values.add().int_value = -1
    span.attributes.add(key="empty")  # an AnyValue with no value set
    event = span.events.add(time_unix_nano=1_700_000_000_500_000_000, name="gen_ai.choice", dropped_attributes_count=6)
    set_attributes(event.attributes, {"index": 0})
    link = span.links.add(
        trace_id=bytes(range(16, 32)), span_id=bytes(range(16, 24)), trace_state="k=v", dropped_attributes_count=7
    )
    link.flags = 0x101
    set_attributes(link.attributes, {"link.kind": "follows"})
    return traces


def set_attributes(target: Any, values: dict[str, Any]) -> None:
    for key, value in values.items():
        set_any_value(target.add(key=key).value, value)


def logged_traces(records: list[logging.LogRecord]) -> TracesData:
    """What the detailed debug exporter printed, parsed back into one TracesData."""
    merged = TracesData()
    for record in records:
        if record.name == DEBUG_LOGGER and not record.getMessage().startswith("Traces:"):
            merged.MergeFrom(text_format.Parse(record.getMessage(), TracesData()))
    return merged


def make_certificates(directory: Path) -> dict[str, Path]:
    """A private CA, a server certificate for 127.0.0.1 and a client certificate, as PEM files."""
    pytest.importorskip("cryptography")
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.UTC)

    def issue(
        name: str, key: ec.EllipticCurvePrivateKey, issuer: x509.Name | None, signer: ec.EllipticCurvePrivateKey
    ) -> x509.Certificate:
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer or subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
        )
        if issuer is None:
            builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        elif name == "server":
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False
            ).add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        else:
            builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        return builder.sign(signer, hashes.SHA256())

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = issue("test ca", ca_key, None, ca_key)
    issued = {"ca": (ca, ca_key)}
    for name in ("server", "client"):
        key = ec.generate_private_key(ec.SECP256R1())
        issued[name] = (issue(name, key, ca.subject, ca_key), key)
    files: dict[str, Path] = {}
    for name, (certificate, key) in issued.items():
        files[f"{name}.crt"] = directory / f"{name}.crt"
        files[f"{name}.crt"].write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        files[f"{name}.key"] = directory / f"{name}.key"
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        files[f"{name}.key"].write_bytes(pem)
    return files
