"""The ``api`` extension: the store's read side over HTTP, on one port (default 127.0.0.1:16686).

- ``extension``: the component (config in ``config``), finding the store and serving the app;
- ``app``: the Starlette app, the access guard and CORS in front; ``ROUTE_GROUPS`` lists every route group;
- ``endpoints``: ``Endpoint`` (one declaration per route: path, parameters, response schema, handler)
  and ``ApiCall`` (what a handler gets: arguments, the caller's scope, the context, ``run`` for queries);
- ``params``: declared parameters and their parsers; ``errors``: the API's errors and JSON shape;
- ``openapi`` and ``schemas``: the OpenAPI 3.1 document, made from the endpoint declarations;
- ``context``: what every route works with (settings, tables, query runner, stream hub);
- ``query``: the SQL the API builds (scope, time window and row limit required) and rows → OTLP;
- ``rest``: /api/v1; ``stream``: the live stream (SSE, WebSocket) fed by the Service's pipeline tap.

To add routes (another API on the same port), write a module with
``routes(context) -> list[Endpoint | BaseRoute]`` and add it to
``app.ROUTE_GROUPS``; read the store with the query functions or a
``query.sql.Select`` built with ``ApiCall.scope``, run through ``ApiCall.run``.
"""

from collector.extensions.api.extension import factory

__all__ = ["factory"]
