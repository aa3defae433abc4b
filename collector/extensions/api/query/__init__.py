"""The read side's query layer: SQL it builds itself over the store, and what it makes of the rows.

- ``sql``: ``Select`` (scope, window and row limit required), ``Params``,
  ``Scope``, ``TimeRange``/``TraceWindow``, ``BuiltQuery``;
- ``tables``: the store's tables as the read side names them;
- ``runner``: runs a ``BuiltQuery`` on the store's query pool, cancelled when the caller leaves;
- ``spans`` and ``attribute_types``: ``otel_traces`` rows back into OTLP ``TracesData``;
- ``filters``, ``cursor``: search filters as SQL, and where a page ended;
- ``traces``, ``calls``, ``findings``, ``stats``, ``services``: the questions the API answers.
"""
