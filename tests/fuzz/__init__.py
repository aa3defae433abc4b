"""Fuzz tests (hypothesis) for everything that reads bytes a stranger controls.

Covered: the OTLP protobuf and JSON decoders, the gRPC handler, gzip/deflate
decoding, the OTLP/HTTP receiver end to end, the proxy's SSE splitter and stream
tees, and the config loader. The property is always the same: a hostile input
is refused with the documented rejection type (and, over HTTP, a 4xx carrying a
google.rpc.Status), never another exception, never a 5xx.

Budgets are hypothesis settings profiles (see ``tests.fuzz.profiles``):

- ``ci`` (the default): few examples per test, the whole suite in well under a
  minute on two cores, no example database, so CI stays bounded and stateless.
- ``long``: fifty times the examples, no per-example deadline, with an example
  database under ``.hypothesis/`` so a failure found once is replayed. Select it
  with ``GENAI_FUZZ=long``::

      GENAI_FUZZ=long .venv/bin/python -m pytest tests/fuzz -p no:timeout

A failure prints the shrunk input; add it as an ``@example`` (or a plain test)
next to the fuzzer that found it.
"""
