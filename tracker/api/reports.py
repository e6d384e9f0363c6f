"""GET /campaigns/{campaign}/report."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..metrics import campaign_report
from ..problems import Problem
from .common import store_of, workspace


async def report(request: Request) -> Response:
    ws = await workspace(request)
    campaign = request.path_params["campaign"]
    store = store_of(request)
    if not await store.campaign_known(ws, campaign):
        raise Problem(404, "Not found", f"No campaign {campaign!r} in this workspace.")
    agg, links, recipients = await store.campaign_counts(ws, campaign)
    return JSONResponse(campaign_report(campaign, agg, links, recipients))


routes = [Route("/api/v1/campaigns/{campaign:path}/report", report, methods=["GET"])]
