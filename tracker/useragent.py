"""Who made a click: a person, a messenger's link-preview fetcher, or a bot.

Pure and cached by user-agent string; runs in the worker, never on the
redirect. The order of the checks matters:

1. HEAD requests are never people (Twitter and mail scanners send HEAD with
   browser user agents; Dub drops every HEAD for the same reason).
2. WhatsApp's in-app browser (``WA4A/`` on Android, ``WAiOS/`` on iOS) is a
   person who tapped the link, even though its user agent says "WhatsApp":
   crawler lists flag any "WhatsApp" and would throw away real clicks.
3. Messenger preview fetchers (WhatsApp's own ``WhatsApp/x.y A|i|W``, which
   Signal also sends, Meta's, Telegram's, Slack's, Discord's, Twitter's,
   Skype's, iMessage's) fetch the page when a link is pasted or received.
4. Empty user agents, crawlerdetect's list and ua-parser's spider family are
   bots.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Final, Literal

import user_agents
from crawlerdetect import CrawlerDetect

Kind = Literal["human", "preview", "bot", "head"]

_IN_APP = re.compile(r"WA4A/|WAiOS/")
_PREVIEW = re.compile(
    r"^WhatsApp/"  # WhatsApp's (and Signal's) fetcher: "WhatsApp/2.23.20.0 A"
    r"|facebookexternalhit|Facebot|meta-externalagent|meta-externalfetcher"
    r"|TelegramBot|Slackbot|Slack-ImgProxy|Discordbot|Twitterbot"
    r"|SkypeUriPreview|LinkedInBot|Viber|Snap URL Preview|Iframely|redditbot"
    r"|Google-PageRenderer|Pinterestbot|Embedly",
    re.IGNORECASE,
)
_crawlers: Final = CrawlerDetect()


@dataclass(frozen=True)
class Client:
    kind: Kind
    device: str  # mobile, tablet, desktop, other
    os: str
    browser: str

    @property
    def human(self) -> bool:
        return self.kind == "human"


_UNKNOWN = "Other"
# Parts of a user agent become report labels and the worker's clicker-state
# tokens, which a newline separates (scripts/apply_click.lua): no control
# characters in them, whatever a client sends.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@lru_cache(maxsize=65_536)
def _describe(ua: str) -> tuple[str, str, str]:
    parsed = user_agents.parse(ua)
    if parsed.is_tablet:
        device = "tablet"
    elif parsed.is_mobile:
        device = "mobile"
    elif parsed.is_pc:
        device = "desktop"
    else:
        device = "other"
    browser = parsed.browser.family or _UNKNOWN
    if _IN_APP.search(ua):
        browser = "WhatsApp in-app"
    return device, _CONTROL.sub(" ", parsed.os.family or _UNKNOWN), _CONTROL.sub(" ", browser)


@lru_cache(maxsize=65_536)
def _kind(ua: str) -> Kind:
    if _IN_APP.search(ua):
        return "human"
    if not ua.strip():
        return "bot"
    if _PREVIEW.search(ua):
        return "preview"
    if _crawlers.isCrawler(ua):
        return "bot"
    if user_agents.parse(ua).is_bot:
        return "bot"
    return "human"


@lru_cache(maxsize=65_536)
def classify(ua: str, method: str = "GET") -> Client:
    """Classify one request. Only `kind == "human"` is ever counted as a click.
    (Cached whole: a campaign's clicks come from a few thousand user agents,
    and a Client is immutable.)"""
    if method.upper() == "HEAD":
        kind: Kind = "head"
    else:
        kind = _kind(ua)
    if kind != "human":
        return Client(kind, "other", _UNKNOWN, _UNKNOWN)
    device, os_family, browser = _describe(ua)
    return Client(kind, device, os_family, browser)
