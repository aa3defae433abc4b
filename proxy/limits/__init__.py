"""Limits per proxy key and per tenant: requests and tokens per minute, calls in flight, USD per day and month.

``settings`` is the ``limits:`` config, ``buckets`` the token-bucket and UTC-window
arithmetic, ``store`` the state's interface with its two backings (``memory``,
one process; ``redis_store``, shared by replicas through atomic Lua scripts),
and ``limiter`` what the proxy calls: admit a call before forwarding it, settle
it with its real usage when it ends, and the rate-limit headers of each answer.
"""
