"""The dashboard's HTML. Pure: the report API's own JSON in, markup out.

Every number on a page is a field of a report API response (report,
timeseries, breakdown, orders, campaign list), formatted and nothing else:
the dashboard has no second source of numbers. Everything user-supplied is
escaped. Pages need no script; dashboard.js only makes the window switch and
the range form update the page in place.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from html import escape
from typing import Any
from urllib.parse import urlencode

from . import charts

CENT = Decimal("0.01")

Json = Mapping[str, Any]

FUNNEL = (("Sent", "sent", None), ("Delivered", "delivered", "delivery_rate"),
          ("Read", "read", "read_rate"), ("Clicked", "unique_clickers", "ctr"),
          ("Ordered", "converters", "conversion_rate"))


def pct(rate: Json | None) -> str:
    if not rate or rate.get("value") is None:
        return "–"
    return f"{rate['value'] * 100:.1f} %"


def rate_note(rate: Json | None) -> str:
    """'12.3 % of delivered': a rate always says what it is a share of."""
    if not rate:
        return ""
    return f"{pct(rate)} of {rate['denominator'].replace('_', ' ')}"


def money(per_currency: Mapping[str, Any] | None) -> str:
    if not per_currency:
        return "0"
    parts = []
    for cur, value in sorted(per_currency.items()):
        if isinstance(value, Mapping):  # an average (a money rate): shown to the cent
            value = value.get("value")
            value = None if value is None else f"{Decimal(value).quantize(CENT)}"
        parts.append("–" if value is None else f"{value} {cur}")
    return ", ".join(parts)


def roas(rocs: Json) -> str:
    if rocs.get("value") is None:
        return "–"
    return f"{rocs['value'] * 100:,.0f} %"


def _q(params: Mapping[str, str], **change: str) -> str:
    merged = {k: v for k, v in {**params, **change}.items() if v}
    return "?" + urlencode(merged) if merged else "?"


def layout(title: str, body: str, *, workspace: str = "", signed_in: bool = False) -> str:
    session = ""
    if signed_in:
        session = ('<form method="post" action="/dashboard/signout" class="signout">'
                   f'<span>{escape(workspace)}</span> '
                   '<button type="submit">Sign out</button></form>')
    return (
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)} · tracker</title>"
        '<link rel="stylesheet" href="/dashboard/static/dashboard.css">'
        '<script defer src="/dashboard/static/dashboard.js"></script></head><body>'
        '<a class="skip" href="#main">Skip to content</a>'
        '<header><a class="brand" href="/dashboard">tracker</a>'
        f"{session}</header>"
        f'<main id="main" tabindex="-1">{body}</main></body></html>'
    )


def signin(error: str = "") -> str:
    err = (f'<p class="error" role="alert" id="signin-error">{escape(error)}</p>'
           if error else "")
    body = (
        '<section class="signin"><h1>Sign in</h1>'
        "<p>Use a <strong>read-only</strong> API key of your workspace "
        "(<code>tracker key create WORKSPACE --scope read</code>, or "
        "<code>POST /api/v1/keys</code> with <code>{\"scope\": \"read\"}</code>). "
        "It is kept in a cookie only this dashboard can read.</p>"
        f"{err}"
        '<form method="post" action="/dashboard/signin">'
        '<label for="key">API key</label>'
        '<input id="key" name="key" type="password" autocomplete="off" required'
        + (' aria-describedby="signin-error"' if error else "") + ">"
        '<button type="submit">Sign in</button></form></section>'
    )
    return layout("Sign in", body)


Windows = Sequence[tuple[str, str]]  # (value, label): ("120h", "5 d")


def _controls(params: Mapping[str, str], windows: Windows, window: str,
              csv: str = "") -> str:
    """The attribution-window switch and the date range (dates in the workspace's zone)."""
    links = "".join(
        f'<a data-live data-window="{escape(w)}" href="{escape(_q(params, window=w))}"'
        + (' aria-current="true" class="on"' if w == window else "") + f">{escape(label)}</a>"
        for w, label in windows)
    hidden = "".join(f'<input type="hidden" name="{escape(k)}" value="{escape(v)}">'
                     for k, v in params.items() if k not in ("from", "to") and v)
    download = (f'<a class="csv" href="{escape(csv)}" download>Download CSV</a>'
                if csv else "")
    return (
        '<div class="controls">'
        f'<nav class="windows" aria-label="Attribution window"><span>Window</span>{links}</nav>'
        f'<form class="range" method="get" data-live>{hidden}'
        f'<label>From <input type="date" name="from" value="{escape(params.get("from", ""))}">'
        "</label>"
        f'<label>To <input type="date" name="to" value="{escape(params.get("to", ""))}">'
        "</label><button type=\"submit\">Apply</button>"
        f'<a href="{escape(_q({k: v for k, v in params.items() if k not in ("from", "to")}))}"'
        ' data-live>All time</a></form>'
        f"{download}</div>"
    )


LIST_COLUMNS = (("campaign", "Campaign"), ("delivered", "Delivered"),
                ("read_rate", "Read rate"), ("ctr", "CTR"), ("orders", "Orders"),
                ("net_revenue", "Net revenue"), ("revenue_per_recipient", "Revenue / recipient"),
                ("rocs", "Return on spend"))


def campaigns(items: Sequence[Json], params: Mapping[str, str], windows: Windows,
              window: str, workspace: str, period_note: str) -> str:
    sort = params.get("sort", "campaign")
    head = []
    for key, label in LIST_COLUMNS:
        desc = sort == key  # clicking the sorted column flips it
        target = f"-{key}" if desc else key
        state = ("ascending" if sort == key else "descending" if sort == f"-{key}"
                 else "none")
        head.append(f'<th scope="col" aria-sort="{state}"><a data-live '
                    f'href="{escape(_q(params, sort=target))}">{escape(label)}</a></th>')
    rows = []
    for item in items:
        k = item["kpis"]
        name = item["campaign"]
        title = item.get("name") or name
        rows.append(
            "<tr>"
            f'<td><input type="checkbox" name="campaigns" value="{escape(name)}" '
            f'form="compare" aria-label="Compare {escape(title)}"></td>'
            f'<th scope="row"><a href="/dashboard/campaigns/{escape(name)}'
            f'{escape(_q({k2: v for k2, v in params.items() if k2 != "sort"}))}">'
            f"{escape(title)}</a></th>"
            f'<td data-kpi="delivered">{k["delivered"]:,}</td>'
            f'<td data-kpi="read_rate">{pct(k["read_rate"])}</td>'
            f'<td data-kpi="ctr">{pct(k["ctr"])}</td>'
            f'<td data-kpi="orders">{k["orders"]:,}</td>'
            f'<td data-kpi="net_revenue">{escape(money(k["net_revenue"]))}</td>'
            f'<td data-kpi="revenue_per_recipient">'
            f'{escape(money(k["revenue_per_recipient"]))}</td>'
            f'<td data-kpi="rocs">{roas(k["rocs"])}</td></tr>')
    empty = ('<p>No campaigns yet: create links with a <code>campaign</code> and they '
             "appear here.</p>") if not items else ""
    body = (
        f"<h1>Campaigns</h1><p class=\"sub\">{escape(period_note)}</p>"
        f"{_controls(params, windows, window)}{empty}"
        '<form id="compare" method="get" action="/dashboard/compare"></form>'
        '<div class="scroll"><table class="list"><caption class="vh">Campaigns with headline '
        'KPIs; select two or more to compare</caption>'
        f'<thead><tr><td></td>{"".join(head[:1])}{"".join(head[1:])}</tr></thead>'
        f'<tbody>{"".join(rows)}</tbody></table></div>'
        f'<input type="hidden" name="window" value="{escape(window)}" form="compare">'
        '<button type="submit" form="compare">Compare selected</button>'
    )
    return layout("Campaigns", body, workspace=workspace, signed_in=True)


def _kpi(label: str, value: str, key: str, note: str = "") -> str:
    return (f'<div class="kpi"><dt>{escape(label)}</dt><dd data-kpi="{key}">{escape(value)}'
            f"</dd>{f'<dd class=note>{escape(note)}</dd>' if note else ''}</div>")


def _bar(value: float, top: float) -> str:
    w = 120 * value / top if top else 0
    return (f'<svg class="bar" viewBox="0 0 120 10" width="120" height="10" aria-hidden="true">'
            f'<rect width="{w:.1f}" height="10" fill="{charts.COLOURS[1]}"/></svg>')


def _breakdown(title: str, rows: Sequence[Json], label: str) -> str:
    top = max((r["clicks"] for r in rows), default=0)
    body = "".join(
        f'<tr><th scope="row">{escape(str(r["value"]))}</th>'
        f'<td>{r["clicks"]:,} {_bar(r["clicks"], top)}</td><td>{r["unique_clickers"]:,}</td>'
        f'<td>{r["orders"]:,}</td><td>{escape(money(r["net"]))}</td></tr>' for r in rows)
    if not rows:
        body = '<tr><td colspan="5">No clicks yet.</td></tr>'
    return (f'<section class="breakdown"><h3>{escape(title)}</h3><div class="scroll"><table>'
            f'<thead><tr><th scope="col">{escape(label)}</th><th scope="col">Clicks</th>'
            '<th scope="col">Unique clickers</th><th scope="col">Orders</th>'
            f'<th scope="col">Net revenue</th></tr></thead><tbody>{body}</tbody></table></div>'
            "</section>")


def campaign(report: Json, buckets: Sequence[Json], breakdowns: Mapping[str, Sequence[Json]],
             orders: Sequence[Json], params: Mapping[str, str], windows: Windows,
             workspace: str, tz: str, period_note: str, csv: str) -> str:
    name = report["campaign"]
    title = report.get("name") or name
    rev = report["revenue"]
    net = {c: m["net"] for c, m in rev.items()}
    rpr = {c: m["revenue_per_recipient"] for c, m in rev.items()}
    kpis = (
        _kpi("Delivered", f"{report['delivered']:,}", "delivered",
             rate_note(report["delivery_rate"]))
        + _kpi("Read rate", pct(report["read_rate"]), "read_rate", "of delivered")
        + _kpi("CTR", pct(report["ctr"]), "ctr", "unique clickers of delivered")
        + _kpi("Orders", f"{report['orders']:,}", "orders", f"window {report['window']}")
        + _kpi("Net revenue", money(net), "net_revenue", "gross minus refunds")
        + _kpi("Revenue / recipient", money(rpr), "revenue_per_recipient", "net / delivered")
        + _kpi("Return on spend", roas(report["rocs"]), "rocs",
               report["rocs"].get("reason") or "net revenue / spend")
    )
    steps = []
    for label, key, rate_key in FUNNEL:
        note = rate_note(report[rate_key]) if rate_key else "messages"
        steps.append((label, int(report[key]), note))
    funnel_rows = "".join(
        f'<tr data-step="{key}"><th scope="row">{label}</th><td>{report[key]:,}</td>'
        f"<td>{pct(report[rk]) if rk else '–'}</td>"
        f"<td>{escape(report[rk]['numerator'] + ' / ' + report[rk]['denominator']) if rk else ''}"
        "</td></tr>" for label, key, rk in FUNNEL)
    nh = report["non_human"]
    excluded = (f'<p class="note" data-kpi="non_human_clicks">{report["non_human_clicks"]:,} '
                f"non-human clicks excluded: {nh.get('preview', 0):,} link previews, "
                f"{nh.get('bot', 0):,} bots, {nh.get('head', 0):,} HEAD requests. "
                f"{report['clicks']:,} human clicks counted.</p>")
    labels = [b["start"][:16].replace("T", " ") if len(buckets) <= 72 else b["start"][:10]
              for b in buckets]
    clicks = [float(b["clicks"]) for b in buckets]
    orders_n = [float(b["orders"]) for b in buckets]
    currency = next(iter(sorted(net)), "")
    revenue = [float(b["net"].get(currency, 0)) for b in buckets]
    series_rows = "".join(
        f"<tr><th scope=\"row\">{escape(lab)}</th><td>{int(c):,}</td><td>{int(o):,}</td>"
        f"<td>{escape(money(b['net']))}</td></tr>"
        for lab, c, o, b in zip(labels, clicks, orders_n, buckets, strict=True))
    def figure(caption: str, svg: str) -> str:
        return f"<figure><figcaption>{escape(caption)}</figcaption>{svg}</figure>"

    window = report["window"]
    over_time = (
        f'<section class="series"><h2>Over time <span class="sub">({escape(tz)})</span></h2>'
        + figure("Human clicks", charts.columns("Human clicks", labels, clicks,
                                                ident="s-clicks"))
        + figure(f"Attributed orders (window {window})",
                 charts.columns("Attributed orders", labels, orders_n, colour=1,
                                ident="s-orders"))
        + (figure(f"Net revenue, {currency} (window {window})",
                  charts.columns(f"Net revenue ({currency})", labels, revenue,
                                 unit=f" {currency}", colour=2, ident="s-net"))
           if currency else "")
        + '<details><summary>As a table</summary><div class="scroll"><table><thead><tr>'
          '<th scope="col">Bucket</th><th scope="col">Clicks</th><th scope="col">Orders</th>'
          f'<th scope="col">Net revenue</th></tr></thead><tbody>{series_rows}</tbody></table>'
          "</div></details></section>")
    order_rows = "".join(
        f'<tr><th scope="row">{escape(o["order_id"])}</th><td>{escape(o["ordered_at"][:16])}'
        f'</td><td>{escape(o["amount"])} {escape(o["currency"])}</td>'
        f'<td>{escape(o["refunded"])}</td><td>{escape(o["attributed_by"].replace("_", " "))}'
        f'</td><td>{escape(o["link"])}</td><td>{o["hours_from_click"]} h</td></tr>'
        for o in orders)
    if not orders:
        order_rows = '<tr><td colspan="7">No attributed orders in this window.</td></tr>'
    body = (
        '<nav class="crumbs"><a href="/dashboard'
        f'{escape(_q({k: v for k, v in params.items() if k in ("window", "from", "to")}))}">'
        "← Campaigns</a></nav>"
        f"<h1>{escape(title)}</h1><p class=\"sub\">{escape(period_note)}</p>"
        f"{_controls(params, windows, report['window'], csv)}"
        f'<dl class="kpis">{kpis}</dl>'
        f'<section><h2>Funnel</h2>{charts.funnel(steps, f"Funnel of {title}")}'
        '<div class="scroll"><table class="funnel-table"><thead><tr><th scope="col">Step</th>'
        '<th scope="col">Count</th><th scope="col">Rate</th><th scope="col">Rate is</th>'
        f"</tr></thead><tbody>{funnel_rows}</tbody></table></div>{excluded}</section>"
        f"{over_time}"
        '<section><h2>Breakdowns <span class="sub">(whole campaign)</span></h2>'
        '<div class="grid">'
        + _breakdown("By link", breakdowns.get("link", []), "Link")
        + _breakdown("By device", breakdowns.get("device", []), "Device")
        + _breakdown(f"By hour of day ({tz})", breakdowns.get("hour_of_day", []), "Hour")
        + "</div></section>"
        '<section><h2>Attributed orders</h2><div class="scroll"><table class="orders"><thead>'
        '<tr><th scope="col">Order</th><th scope="col">Placed</th><th scope="col">Amount</th>'
        '<th scope="col">Refunded</th><th scope="col">Attributed by</th>'
        '<th scope="col">Link</th><th scope="col">Click to order</th></tr></thead>'
        f"<tbody>{order_rows}</tbody></table></div></section>"
    )
    return layout(title, body, workspace=workspace, signed_in=True)


COMPARE_ROWS: tuple[tuple[str, Callable[[Json], str]], ...] = (
    ("Recipients", lambda r: f"{r['recipients']:,}"),
    ("Sent", lambda r: f"{r['sent']:,}"),
    ("Delivered", lambda r: f"{r['delivered']:,}"),
    ("Delivery rate", lambda r: rate_note(r["delivery_rate"])),
    ("Read rate", lambda r: rate_note(r["read_rate"])),
    ("CTR", lambda r: rate_note(r["ctr"])),
    ("Human clicks", lambda r: f"{r['clicks']:,}"),
    ("Non-human clicks excluded", lambda r: f"{r['non_human_clicks']:,}"),
    ("Orders", lambda r: f"{r['orders']:,}"),
    ("Conversion rate", lambda r: rate_note(r["conversion_rate"])),
    ("Net revenue", lambda r: money({c: m["net"] for c, m in r["revenue"].items()})),
    ("Revenue / recipient", lambda r: money({c: m["revenue_per_recipient"]
                                             for c, m in r["revenue"].items()})),
    ("Return on spend", lambda r: roas(r["rocs"])),
    ("Opt-out rate", lambda r: rate_note(r["opt_out_rate"])),
)


def compare(reports: Sequence[Json], params: Mapping[str, str], windows: Windows,
            window: str, workspace: str, period_note: str) -> str:
    head = "".join(f'<th scope="col">{escape(r.get("name") or r["campaign"])}</th>'
                   for r in reports)
    rows = "".join(
        f'<tr><th scope="row">{label}</th>'
        + "".join(f"<td>{escape(fn(r))}</td>" for r in reports) + "</tr>"
        for label, fn in COMPARE_ROWS)
    body = (
        '<nav class="crumbs"><a href="/dashboard">← Campaigns</a></nav>'
        f"<h1>Compare</h1><p class=\"sub\">{escape(period_note)}</p>"
        f"{_controls(params, windows, window)}"
        '<div class="scroll"><table class="compare"><caption class="vh">Campaigns side by side'
        f'</caption><thead><tr><td></td>{head}</tr></thead><tbody>{rows}</tbody></table></div>'
    )
    return layout("Compare", body, workspace=workspace, signed_in=True)


def problem(title: str, detail: str, workspace: str = "", signed_in: bool = False) -> str:
    body = (f'<h1>{escape(title)}</h1><p role="alert">{escape(detail)}</p>'
            '<p><a href="/dashboard">Back to the campaigns</a></p>')
    return layout(title, body, workspace=workspace, signed_in=signed_in)
