"""The baselines every redirect figure is divided by, served like tracker is."""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

LOCATION = "https://shop.example/sale?utm_source=whatsapp&utm_medium=message&utm_campaign=b" \
           "&trk_id=AAAAAAAAAAAA"


async def _redirect(request: Request) -> Response:
    return Response(status_code=302, headers={"location": LOCATION,
                                              "cache-control": "private, no-store"})


# An empty Starlette route answering a constant 302.
starlette_app = Starlette(routes=[Route("/{code}", _redirect)])

_HEADERS = [(b"location", LOCATION.encode()), (b"cache-control", b"private, no-store"),
            (b"content-length", b"0")]


async def bare_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """A bare ASGI callable answering the same constant 302."""
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 302, "headers": _HEADERS})
    await send({"type": "http.response.body", "body": b""})
