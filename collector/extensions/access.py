"""Who may call the collector's own HTTP endpoints, and from where: the guard in front of admin and API apps.

Every request passes four checks before it reaches a route:

- Host must be an IP literal, ``localhost`` or a name the config allows. A web
  page that rebinds its own DNS name to 127.0.0.1 still sends that name, so it
  is refused (DNS rebinding).
- Origin, when a browser sends one, must be the listener's own origin or one the
  config allows: another page the operator has open cannot drive the endpoint.
- A request that changes something (POST, PUT, PATCH, DELETE) must say its body
  is JSON. Forms and text/plain are what a page can send cross-site without a
  CORS preflight; JSON needs the preflight, which is never answered.
- ``Authorization: Bearer <key>`` names a key of the store (or the collector's
  local admin token); its role and tenant go with the request, for the route
  to check with ``require``. Only the open paths (``/health``, and those
  ``open_when`` accepts: the web console's pages and assets, which hold no
  data) need none, and,
  for a listener that allows it (``anonymous_reads``: the api extension on
  loopback), any request while no API key exists, as a viewer of every tenant.

WebSocket handshakes get the same checks but the JSON one. Refusals are JSON
``{"error": ...}`` (or what ``refusal`` makes of them) with 400, 401, 403 or
415, and counted; a refused handshake gets the same answer as an HTTP denial.
"""

from __future__ import annotations

import contextlib
import hmac
import ipaddress
import os
import secrets
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from pathlib import Path

from starlette.datastructures import Headers
from starlette.requests import HTTPConnection
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from collector.config.types import HostPort
from collector.extensions.generated_metrics import HttpAccessSelfMetrics
from collector.keys import API_ROLES, KeyStore, Role, hash_key
from collector.private_files import PRIVATE_FILE_MODE, private_directory
from collector.telemetry import Telemetry

STATE_CHANGING_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
JSON_MEDIA_TYPE = "application/json"
LOCAL_TOKEN_PREFIX = "gct_"
LOCAL_TOKEN_BYTES = 32
# Close code for a handshake refused where the server cannot send an HTTP answer (RFC 6455, 7.4.1).
WEBSOCKET_POLICY_VIOLATION = 1008
# Roles by reach: each includes what the ones after it may do.
ROLE_RANK: dict[Role, int] = {"admin": 3, "operator": 2, "viewer": 1}
PRINCIPAL_SCOPE_KEY = "genai_collector.principal"
# Who a request is when a listener open to reads is called with no key and none exists.
ANONYMOUS_VIEWER_ID = "anonymous"
# Makes the answer to a refused request from (status, reason label, message, headers).
Refusal = Callable[[int, str, str, "dict[str, str] | None"], Response]


@dataclass(frozen=True)
class Principal:
    """The caller a request's key names."""

    key_id: str
    role: Role
    tenant: str | None


class AccessDenied(Exception):
    """The caller may not do this; ``status`` is 401 (who are you) or 403 (not you)."""

    def __init__(self, message: str, status: int = 403) -> None:
        super().__init__(message)
        self.status = status


def is_loopback(host: str) -> bool:
    """Whether listening on ``host`` keeps the socket to this machine."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class LocalToken:
    """An admin credential for this machine's owner: random per start, in a file only the owner can read.

    It lets ``genai-collector query`` reach a running collector with no key
    created; anyone who can read the file could read the store's files anyway.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._digest = ""

    def issue(self) -> None:
        """Write a new token (0600) and forget the previous one."""
        token = LOCAL_TOKEN_PREFIX + secrets.token_urlsafe(LOCAL_TOKEN_BYTES)
        private_directory(self.path.parent)
        temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE_MODE)
        with os.fdopen(fd, "w", encoding="ascii") as out:
            out.write(token + "\n")
        os.replace(temporary, self.path)
        self._digest = hash_key(token)

    def withdraw(self) -> None:
        """Remove the file and stop accepting the token."""
        self._digest = ""
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    def matches(self, presented: str) -> bool:
        return bool(self._digest) and hmac.compare_digest(self._digest, hash_key(presented))


def read_local_token(path: Path) -> str | None:
    """The token a running collector wrote at ``path``, when this user can read it."""
    try:
        token = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return token if token.startswith(LOCAL_TOKEN_PREFIX) else None


def require(request: HTTPConnection, role: Role, any_tenant: bool = False) -> Principal:
    """The request's principal when its role reaches ``role`` (and, with ``any_tenant``, it is bound to none)."""
    principal: Principal | None = request.scope.get(PRINCIPAL_SCOPE_KEY)
    if principal is None:
        raise AccessDenied("an API key is required: send it as Authorization: Bearer <key>", 401)
    if ROLE_RANK[principal.role] < ROLE_RANK[role]:
        raise AccessDenied(f"this needs the {role} role; the key {principal.key_id} is {principal.role}")
    if any_tenant and principal.tenant is not None:
        raise AccessDenied(f"the key {principal.key_id} is bound to one tenant; this covers every tenant")
    return principal


class AccessGuard:
    """ASGI middleware applying the module's checks in front of ``app``."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        keys: KeyStore,
        local_token: LocalToken | None,
        allowed_hosts: Iterable[str],
        allowed_origins: Iterable[str],
        open_paths: Collection[str],
        telemetry: Telemetry,
        listener: str,
        anonymous_reads: bool = False,
        refusal: Refusal | None = None,
        open_when: Callable[[str], bool] | None = None,
    ) -> None:
        self._app = app
        self._keys = keys
        self._local_token = local_token
        self._allowed_hosts = {name.lower().rstrip(".") for name in allowed_hosts} | {"localhost"}
        self._allowed_origins = {origin.lower().rstrip("/") for origin in allowed_origins}
        self._open_paths = frozenset(open_paths)
        self._open_when = open_when
        self._metrics = HttpAccessSelfMetrics(telemetry)
        self._listener = listener
        self._anonymous_reads = anonymous_reads
        self._refusal = refusal or _json_refusal

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self._app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        refusal = self._check(scope, headers)
        if refusal is not None:
            status, reason, message = refusal
            self._metrics.collector_http_access_refused.add(1, listener=self._listener, reason=reason)
            extra = {"WWW-Authenticate": "Bearer"} if status == 401 else None
            answer = self._refusal(status, reason, message, extra)
            if scope["type"] == "websocket" and "websocket.http.response" not in scope.get("extensions", {}):
                await send({"type": "websocket.close", "code": WEBSOCKET_POLICY_VIOLATION, "reason": message[:120]})
                return
            await answer(scope, receive, send)
            return
        await self._app(scope, receive, send)

    def _check(self, scope: Scope, headers: Headers) -> tuple[int, str, str] | None:
        """(status, reason label, message) of the first check the request fails; None when it passes all."""
        host = headers.get("host")
        if not host:
            return 400, "host", "a Host header is required"
        if not self._host_allowed(host):
            return 403, "host", f'Host "{host}" is not a name this endpoint answers to (allowed_hosts in its config)'
        origin = headers.get("origin")
        if origin is not None and not self._origin_allowed(origin, host, scope):
            return 403, "origin", f'requests from the web origin "{origin}" are not accepted here'
        if scope.get("method") in STATE_CHANGING_METHODS:
            media_type = headers.get("content-type", "").split(";")[0].strip().lower()
            if media_type != JSON_MEDIA_TYPE:
                return 415, "content_type", f"send the body as {JSON_MEDIA_TYPE}"
        path = scope["path"]
        if path in self._open_paths or (self._open_when is not None and self._open_when(path)):
            return None  # whatever credential comes along, an open path neither needs nor judges it
        try:
            principal = caller_principal(
                headers.get("authorization"), self._keys, self._local_token, self._anonymous_reads
            )
        except AccessDenied as exc:
            return exc.status, "key", str(exc)
        scope[PRINCIPAL_SCOPE_KEY] = principal
        return None

    def _host_allowed(self, host: str) -> bool:
        name = _host_name(host)
        if name is None:
            return False
        if name in self._allowed_hosts:
            return True
        try:
            ipaddress.ip_address(name)
        except ValueError:
            return False
        return True  # an IP literal names no DNS entry an attacker could rebind

    def _origin_allowed(self, origin: str, host: str, scope: Scope) -> bool:
        normalized = origin.lower().rstrip("/")
        # A WebSocket's scheme is ws(s); the page that opened it has the http(s) origin.
        scheme = {"ws": "http", "wss": "https"}.get(scope.get("scheme", "http"), scope.get("scheme", "http"))
        own = f"{scheme}://{host.lower()}"
        return normalized == own or normalized in self._allowed_origins



def caller_principal(
    authorization: str | None, keys: KeyStore, local_token: LocalToken | None, anonymous_reads: bool
) -> Principal:
    """Who an ``Authorization`` value (an HTTP header, a gRPC metadata entry) names; AccessDenied (401) if nobody.

    ``Bearer <key>`` names a key of ``keys`` or the local admin token; with no
    credential, ``anonymous_reads`` lets a viewer in while no API key exists.
    """
    if authorization is None:
        if anonymous_reads and not keys.has_keys(API_ROLES):
            return Principal(ANONYMOUS_VIEWER_ID, "viewer", None)
        raise AccessDenied("an API key is required: send it as Authorization: Bearer <key>", 401)
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise AccessDenied("send the key as Authorization: Bearer <key>", 401)
    if local_token is not None and local_token.matches(token):
        return Principal("local-token", "admin", None)
    entry = keys.verify(token, API_ROLES)
    if entry is None:
        raise AccessDenied("the API key is not valid", 401)
    return Principal(entry.id, entry.role, entry.tenant)


def _json_refusal(status: int, reason: str, message: str, headers: dict[str, str] | None) -> Response:
    return JSONResponse({"error": message}, status, headers=headers)


def _host_name(host: str) -> str | None:
    """The name or address in a Host header, without its port; None when the header is malformed."""
    host = host.strip().lower()
    if host.startswith("["):
        end = host.find("]")
        rest = host[end + 1 :]
        if end < 0 or (rest and not _is_port(rest)):
            return None
        return host[1:end]
    name, colon, port = host.rpartition(":")
    if colon and _is_port(":" + port):
        host = name
    if not host or ":" in host:
        return None
    return host.rstrip(".")


def _is_port(text: str) -> bool:
    return text.startswith(":") and text[1:].isascii() and text[1:].isdigit() and len(text) <= 6


def listen_check(endpoint: HostPort, keys: KeyStore, path: str) -> str | None:
    """Why the endpoint may not listen where it is configured to, or None.

    Loopback with no keys is the default; any wider address needs a key created first.
    """
    if is_loopback(endpoint.host) or keys.has_keys(API_ROLES):
        return None
    return (
        f"{path}: {endpoint} is reachable from other machines, and no API key exists in {keys.path}; "
        "create one first (genai-collector keys create --role admin) or listen on 127.0.0.1"
    )
