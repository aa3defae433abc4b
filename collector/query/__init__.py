"""Reading the store: SQL from users and from the collector's own read side, checked, bounded and cancellable.

- ``guard``: raw SQL from a user, checked on the engine's own parser (its AST as
  JSON) against allow-lists, and rebuilt from what was checked;
- ``functions``: the allow-list of functions (``allowed_functions.tsv``, written
  by ``make_allowed_functions``) and how a name in a query resolves against it;
- ``limits``: the ``query_limits`` settings and the locked profile every read
  connection gets;
- ``pool``: the bounded threads and wait queue every query runs on, with
  cancellation and self-metrics;
- ``stores``: which store answers (the clickhouse exporter's);
- ``errors`` and ``result``: what a query fails with, and what it answers;
- ``client`` and ``output``: the ``genai-collector query`` command.
"""
