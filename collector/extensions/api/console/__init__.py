"""The web console: a small ES-module app, served by the api extension at ``/``, that reads only the REST API.

Its files live in ``static/`` (HTML, CSS, JavaScript modules, the vendored
chart library); ``routes`` serves them with a Content-Security-Policy that
allows no inline script, no eval and no HTML built from strings (Trusted
Types). docs/console.md describes the pages and the choices behind them.
"""
