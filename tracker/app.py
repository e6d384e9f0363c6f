"""create_app(settings): the ASGI application of a web process."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator

from redis.exceptions import RedisError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from . import openapi, pixel, prometheus
from .api import campaigns as campaigns_api
from .api import exports as exports_api
from .api import intake as intake_api
from .api import keys as keys_api
from .api import links as links_api
from .api import reports as reports_api
from .api import workspace as workspace_api
from .dashboard import routes as dashboard_routes
from .intake import Intake
from .problems import Problem
from .prometheus import WebMetrics
from .redirect import Front, Redirector
from .resp import FastRedis
from .settings import Settings
from .store import Store, connect
from .webhooks import routes as webhook_routes

log = logging.getLogger("tracker.app")


async def healthz(request: Request) -> Response:
    return PlainTextResponse("ok")


async def readyz(request: Request) -> Response:
    store: Store = request.app.state.store
    try:
        await store.redis.ping()
    except (RedisError, OSError) as exc:
        return JSONResponse({"ready": False, "redis": str(exc)}, status_code=503)
    return JSONResponse({"ready": True})


async def _problem(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Problem)
    return exc.response(request.url.path)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    titles = {404: "Not found", 405: "Method not allowed"}
    problem = Problem(exc.status_code, titles.get(exc.status_code, "Error"), str(exc.detail),
                      headers=dict(exc.headers or {}))
    return problem.response(request.url.path)


async def _redis_down(request: Request, exc: Exception) -> Response:
    log.warning("redis error on %s: %s", request.url.path, exc)
    return Problem(503, "Service unavailable", "Storage is not reachable; retry shortly.",
                   headers={"Retry-After": "5"}).response(request.url.path)


async def _crash(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s", request.url.path)
    return Problem(500, "Internal error", "Something broke on our side.").response(
        request.url.path
    )


def create_app(settings: Settings) -> Front:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        redis = connect(settings.effective_redis_url)
        store = Store(redis, settings)
        try:
            await store.prepare()
        except (RedisError, OSError) as exc:
            # Start anyway: /readyz says not ready, and scripts load on first use.
            log.warning("redis not ready at start-up: %s", exc)
        app.state.settings = settings
        app.state.store = store
        app.state.redirector = front.redirector = Redirector(settings, redis)
        app.state.redirector.replay_leftovers()
        await app.state.redirector.connect()
        await app.state.redirector.refresh_modes()
        modes = asyncio.get_running_loop().create_task(app.state.redirector.keep_modes_fresh())
        app.state.intake = Intake(redis, settings)
        # Everything allocated so far lives as long as the process: move it out
        # of the collector's way, so the young-generation collections that the
        # redirect's allocations trigger stay cheap (measured: see bench/).
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            modes.cancel()
            redirector, app.state.redirector = app.state.redirector, None
            front.redirector = None
            await redirector.settle()
            if isinstance(redirector.commit, FastRedis):
                await redirector.commit.aclose()
            await redis.aclose()

    app = Starlette(
        routes=[
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
            *links_api.routes,
            *reports_api.routes,
            *campaigns_api.routes,
            *exports_api.routes,
            *intake_api.routes,
            *workspace_api.routes,
            *keys_api.routes,
            *webhook_routes.routes,
            *pixel.routes,
            *openapi.routes,
            *prometheus.routes,
            *dashboard_routes.routes,
        ],
        exception_handlers={
            Problem: _problem,
            HTTPException: _http_error,
            RedisError: _redis_down,
            ConnectionError: _redis_down,
            Exception: _crash,
        },
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.redirector = None
    app.state.web_metrics = WebMetrics()
    front = Front(app, app.state.web_metrics)
    return front
