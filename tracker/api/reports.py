"""GET /campaigns/{campaign}/report?window=24h."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..metrics import campaign_report
from ..problems import Problem, invalid
from ..validation import FieldError, Invalid
from ..workspaces import WorkspaceConfig, parse_window_hours
from .common import config, store_of, workspace


def window_of(request: Request, cfg: WorkspaceConfig) -> int:
    """?window= (hours, "24h", "5d"), at most the workspace's maximum."""
    raw = request.query_params.get("window")
    if raw is None:
        return cfg.attribution_window_h
    try:
        hours = parse_window_hours(int(raw) if raw.isdigit() else raw, "window")
    except Invalid as exc:
        raise invalid(exc.errors) from None
    if hours > cfg.attribution_window_h:
        raise invalid([FieldError(
            "window", f"must be at most the workspace's window, {cfg.attribution_window_h}h")])
    return hours


async def report(request: Request) -> Response:
    ws = await workspace(request)
    cfg = await config(request, ws)
    campaign = request.path_params["campaign"]
    window = window_of(request, cfg)
    store = store_of(request)
    if not await store.campaign_known(ws, campaign):
        raise Problem(404, "Not found", f"No campaign {campaign!r} in this workspace.")
    agg, links, recipients, meta = await store.campaign_counts(ws, campaign)
    return JSONResponse(campaign_report(campaign, agg, links, recipients, meta, window))


routes = [Route("/api/v1/campaigns/{campaign:path}/report", report, methods=["GET"])]
