"""The hot read's own lane: ``GET /v1/residents/{citizen_id}`` answered before FastAPI's routing.

Single-resident reads are most of the query API's traffic, and on a small machine FastAPI's request machinery
(its middleware stack, routing across every route, the endpoint wrapper and dependency solving) cost about as
much CPU as the read itself. ``ResidentReadLane`` is a plain ASGI middleware that recognises exactly that
operation and calls the same handler (``routes.read_resident``) with a Starlette ``Request``; errors take the
same shape and statuses as through FastAPI (``ApiError``, a lost database and any other outage of
``services.outages`` — 503 with ``Retry-After`` — here, anything unexpected through the application's 500 handler,
since the lane sits inside Starlette's ``ServerErrorMiddleware``). Every other
request, and any method but GET, goes on to FastAPI, which also keeps declaring the operation in OpenAPI and
serves it when the lane is off (``create_app(fast_lane=False)``; the test suite runs the read cases both ways).
"""

from __future__ import annotations

from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from services.outages import is_outage
from services.query_api.db import DatabaseUnavailableError
from services.query_api.errors import ApiError, database_unavailable_response, noted, outage_response
from services.query_api.routes import get_resident, read_resident, router

__all__ = ["RESIDENT_PREFIX", "ResidentReadLane", "resident_route"]

RESIDENT_PREFIX = "/v1/residents/"


class ResidentReadLane:
    """Answer ``GET /v1/residents/{citizen_id}`` with ``read_resident``; pass everything else to ``app``.

    ``route`` is the FastAPI route of the same operation: it is put in the scope, as Starlette's router would,
    so that the latency metrics label the request with its route template.
    """

    def __init__(self, app: ASGIApp, route: BaseRoute) -> None:
        self.app = app
        self.route = route

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        citizen_id = _resident_read(scope)
        if citizen_id is None:
            await self.app(scope, receive, send)
            return
        scope["route"] = self.route
        response: Response
        request = Request(scope, receive)
        try:
            response = await read_resident(request, citizen_id)
        except ApiError as exc:
            response = noted(request, exc).response()
        except DatabaseUnavailableError as exc:
            response = database_unavailable_response(exc)
        except Exception as exc:
            if not is_outage(exc):
                raise
            response = outage_response(exc)
        await response(scope, receive, send)


def resident_route() -> APIRoute:
    """The FastAPI route of ``GET /v1/residents/{citizen_id}`` (``routes.router``)."""
    for route in router.routes:
        if isinstance(route, APIRoute) and route.endpoint is get_resident:
            return route
    raise LookupError("routes.router has no GET /v1/residents/{citizen_id} route")


def _resident_read(scope: Scope) -> str | None:
    """The path's citizen ID if ``scope`` is ``GET /v1/residents/{citizen_id}`` (as FastAPI would match it)."""
    if scope["type"] != "http" or scope["method"] != "GET":
        return None
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root) :]
    if not path.startswith(RESIDENT_PREFIX):
        return None
    citizen_id = path[len(RESIDENT_PREFIX) :]
    if not citizen_id or "/" in citizen_id:
        return None
    return citizen_id
