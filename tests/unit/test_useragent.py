from __future__ import annotations

import pytest

from tracker.useragent import classify

# Real user agents, as their senders send them.
HUMANS = [
    # WhatsApp's in-app browser on Android and iOS: the recipient tapped the link
    ("Mozilla/5.0 (Linux; Android 13; SM-A536B Build/TP1A.220624.014; wv) AppleWebKit/537.36 "
     "(KHTML, like Gecko) Version/4.0 Chrome/120.0.6099.144 Mobile Safari/537.36 WA4A/2.24.1.6",
     "mobile", "Android", "WhatsApp in-app"),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_1_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, "
     "like Gecko) Mobile/15E148 [WAiOS/2.23.25.85]", "mobile", "iOS", "WhatsApp in-app"),
    # ... which carries "WhatsApp/<version>" too: still a person
    ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/121.0.0.0 Mobile Safari/537.36 WhatsApp/2.24.16.76 WA4A/2.24.16.76",
     "mobile", "Android", "WhatsApp in-app"),
    # the phone's own browser, opened from WhatsApp
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
     "Gecko) Version/17.1 Mobile/15E148 Safari/604.1", "mobile", "iOS", "Mobile Safari"),
    ("Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/120.0.0.0 Mobile Safari/537.36", "mobile", "Android", "Chrome Mobile"),
    ("Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
     "Version/16.6 Mobile/15E148 Safari/604.1", "tablet", "iOS", "Mobile Safari"),
    # WhatsApp Web / Desktop users open links in a desktop browser
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/120.0.0.0 Safari/537.36", "desktop", "Windows", "Chrome"),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:121.0) Gecko/20100101 Firefox/121.0",
     "desktop", "Mac OS X", "Firefox"),
]

PREVIEWS = [
    "WhatsApp/2.17.190 A",
    "WhatsApp/2.19.31 i",
    "WhatsApp/2.17.152 W",
    "WhatsApp/2.23.20.0 A",
    "WhatsApp/2",  # Signal's preview fetcher says this too
    "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
    "Facebot/1.0",
    "meta-externalagent/1.1 (+https://developers.facebook.com/docs/sharing/webmasters/crawler)",
    "TelegramBot (like TwitterBot)",
    "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
    "Slack-ImgProxy (+https://api.slack.com/robots)",
    "Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)",
    "Twitterbot/1.0",
    "Mozilla/5.0 (Windows NT 6.1; WOW64) SkypeUriPreview Preview/0.5 "
    "skype-url-preview@microsoft.com",
    # iMessage's preview: a Safari that also names Facebook's and Twitter's fetchers
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_11_1) AppleWebKit/601.2.4 (KHTML, like Gecko) "
    "Version/9.0.1 Safari/601.2.4 facebookexternalhit/1.1 Facebot Twitterbot/1.0",
    "LinkedInBot/1.0 (compatible; Mozilla/5.0; Apache-HttpClient +http://www.linkedin.com)",
]

BOTS = [
    "",
    "   ",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
    "python-requests/2.31.0",
    "curl/8.4.0",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "HeadlessChrome/120.0.0.0 Safari/537.36",
    "Go-http-client/1.1",
]


@pytest.mark.parametrize(("ua", "device", "os", "browser"), HUMANS)
def test_people(ua: str, device: str, os: str, browser: str) -> None:
    client = classify(ua)
    assert client.kind == "human" and client.human
    assert (client.device, client.os, client.browser) == (device, os, browser)


@pytest.mark.parametrize("ua", PREVIEWS)
def test_link_previews_are_not_clicks(ua: str) -> None:
    assert classify(ua).kind == "preview"


@pytest.mark.parametrize("ua", BOTS)
def test_bots_are_not_clicks(ua: str) -> None:
    assert classify(ua).kind == "bot"


@pytest.mark.parametrize("ua", [HUMANS[0][0], PREVIEWS[0], ""])
def test_head_is_never_a_click(ua: str) -> None:
    # Twitter and mail scanners send HEAD with browser user agents.
    assert classify(ua, "HEAD").kind == "head"
    assert classify(ua, "head").kind == "head"


def test_no_control_character_reaches_a_label(monkeypatch: pytest.MonkeyPatch) -> None:
    """A user agent's parts become report labels and clicker-state tokens,
    which a newline separates (scripts/apply_click.lua): whatever the parser
    takes from a client's header, no control character gets through."""
    from types import SimpleNamespace

    import tracker.useragent as useragent

    def parse(ua: str) -> SimpleNamespace:
        return SimpleNamespace(is_tablet=False, is_mobile=True, is_pc=False, is_bot=False,
                               browser=SimpleNamespace(family="Evil\nbrowser=Chrome"),
                               os=SimpleNamespace(family="And\troid\x7f"))

    monkeypatch.setattr(useragent.user_agents, "parse", parse)
    got = classify("Mozilla/5.0 (a parser the test controls)")
    assert (got.kind, got.os, got.browser) == ("human", "And roid ", "Evil browser=Chrome")
