"""The two serving routes (chat completions and the Responses API) called straight from the ASGI stack.

FastAPI's route machinery (its exception and exit-stack middleware, the router's path matching, solving a
route's dependencies, which parses the query string even for a route that takes none) cost about a sixth of
the gateway's CPU per proxied request (`bench gateway`, README). `ServingRoutes` sits inside the app's
middleware (after the body limit) and sends a POST to one of these paths to its handler directly. The
handlers are the very functions registered as FastAPI routes, which keep publishing the OpenAPI schema and
serve the path if this middleware is absent. Errors are answered by `errors.error_response`, as FastAPI's
handlers answer them; a bug (any other exception) goes on up to Starlette's server-error middleware, which
answers it with the same handler (500, no details) and raises it to the server, as for any route.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException

from smallfleet.api.errors import error_response
from smallfleet.errors import SmallfleetError

Handler = Callable[[Request], Awaitable[Response]]


class ServingRoutes:
    """Pure ASGI middleware: `routes` maps a path to the handler of a POST to it; anything else goes on to `app`."""

    def __init__(self, app: ASGIApp, routes: Mapping[str, Handler]) -> None:
        self.app = app
        self.routes = dict(routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        handler = self.routes.get(_route_path(scope)) if scope["type"] == "http" and scope["method"] == "POST" \
            else None
        if handler is None:
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive, send)
        try:
            response = await handler(request)
        except (SmallfleetError, RequestValidationError, HTTPException) as exc:
            response = await error_response(request, exc)
        await response(scope, receive, send)


def _route_path(scope: Scope) -> str:
    """The path the app's routes see: without the root path a proxy or a mount put in front."""
    path, root = scope["path"], scope.get("root_path", "")
    return path[len(root):] if root and path.startswith(root) else path
