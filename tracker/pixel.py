"""GET /px.js: the shop-side script (the GIF itself is served by redirect.py)."""

from __future__ import annotations

from functools import cache
from importlib import resources

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


@cache
def _script() -> bytes:
    return resources.files("tracker").joinpath("static/px.js").read_bytes()


async def px_js(request: Request) -> Response:
    return Response(_script(), media_type="application/javascript",
                    headers={"Cache-Control": "public, max-age=3600"})


routes = [Route("/px.js", px_js, methods=["GET"])]
