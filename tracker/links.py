"""Short codes, destination validation and UTM merging. Pure: no I/O, no clock.

UTM precedence (documented in the README): a value in the request's `utm`
object wins; otherwise a value already in the destination's own query is
kept; otherwise the default is appended (utm_source, utm_medium and
utm_campaign only). Every other query parameter keeps its position, its
repeats and its original encoding, and the fragment is kept.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator, Mapping
from urllib.parse import quote, unquote_plus, urlsplit, urlunsplit

import shortuuid

_SHORTUUID = shortuuid.ShortUUID()
# shortuuid's alphabet: 57 letters with the look-alikes (0/O, 1/l/I) removed.
ALPHABET: str = _SHORTUUID.get_alphabet()
_ALPHABET_SET = frozenset(ALPHABET)
MIN_CODE_LENGTH = 8
MAX_CODE_LENGTH = 22
MAX_URL_LENGTH = 2048
UTM_FIELDS = ("source", "medium", "campaign", "content", "term")

# Characters left alone when re-encoding a path, query or fragment: the
# reserved set plus '%', so what the shop already encoded stays as it was.
_SAFE_PATH = "/%:@!$&'()*+,;=-._~"
_SAFE_QUERY = "/?%:@!$&'()*+,;=-._~"


class InvalidURL(ValueError):
    """A destination we refuse; the message says why, for the API's problem."""


# A byte maps to a letter only below 4 x 57 = 228 (the rest are dropped), so
# every letter is equally likely; bytes.translate does the mapping in C.
_LIMIT = len(ALPHABET) * (256 // len(ALPHABET))
_TO_LETTER = bytes(ord(ALPHABET[b % len(ALPHABET)]) if b < _LIMIT else 0 for b in range(256))
_DROP = bytes(range(_LIMIT, 256))


def code_key(secret: str) -> bytes:
    """The key link codes are derived with, from a workspace's secret (kept
    apart from the secret's other use, hashing phones and emails)."""
    if not secret:
        raise ValueError("link codes need the workspace's secret")
    return hashlib.blake2b(secret.encode(), digest_size=32, person=b"trk.codes").digest()


def derived_codes(key: bytes, identity: str, length: int = MIN_CODE_LENGTH) -> Iterator[str]:
    """The candidate codes of one link identity, in order: each 64-byte keyed
    hash gives about 57 letters (uniform: see _TO_LETTER), cut
    into codes of `length`. Unguessable without the key, and the same
    identity always gives the same sequence: that is what makes creating a
    link idempotent without an index (the first candidate that is free or
    already holds this identity is its code)."""
    block = 0
    while True:
        digest = hashlib.blake2b(f"{identity}\x1f{block}".encode(), key=key,
                                 digest_size=64).digest()
        letters = digest.translate(_TO_LETTER, _DROP)
        for start in range(0, len(letters) - length + 1, length):
            yield letters[start:start + length].decode()
        block += 1


def template_id(ws: str, campaign: str, url: str) -> str:
    """What the links of one campaign and final URL share: 72 bits of a hash,
    12 characters."""
    digest = hashlib.blake2b(f"{ws}\x1f{campaign}\x1f{url}".encode(), digest_size=9).digest()
    return base64.urlsafe_b64encode(digest).decode()


def looks_like_code(text: str) -> bool:
    """Cheap check on the redirect path, so junk paths never reach Redis."""
    return MIN_CODE_LENGTH <= len(text) <= MAX_CODE_LENGTH and _ALPHABET_SET.issuperset(text)


_HOST_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789.-_")


def _idna_host(host: str) -> str:
    try:
        ascii_host = host.encode("idna").decode("ascii").lower()
    except UnicodeError:
        ascii_host = ""
    if not ascii_host or not _HOST_CHARS.issuperset(ascii_host):
        raise InvalidURL("host is not a valid (internationalised) domain name")
    return ascii_host


def normalise_destination(url: str) -> str:
    """Validate an absolute http(s) URL and encode it as ASCII.

    Internationalised domain names become punycode, non-ASCII characters in
    the path, query and fragment are percent-encoded (UTF-8), and existing
    escapes are kept verbatim.
    """
    url = url.strip()
    if not url:
        raise InvalidURL("must not be empty")
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in url):
        raise InvalidURL("must not contain control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise InvalidURL(f"is not a valid URL ({exc})") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise InvalidURL("must be an absolute http or https URL")
    if not parts.netloc:
        raise InvalidURL("must have a host")
    if "@" in parts.netloc:
        raise InvalidURL("must not contain user information (user:password@)")
    host = parts.hostname or ""
    if not host:
        raise InvalidURL("must have a host")
    # An IPv6 literal (urlsplit strips its brackets) has no IDNA form.
    ascii_host = f"[{host}]" if ":" in host else _idna_host(host)
    netloc = ascii_host if port is None else f"{ascii_host}:{port}"
    path = quote(parts.path, safe=_SAFE_PATH) or "/"
    query = quote(parts.query, safe=_SAFE_QUERY)
    fragment = quote(parts.fragment, safe=_SAFE_QUERY)
    return urlunsplit((scheme, netloc, path, query, fragment))


def domain_allowed(host: str, allowed: tuple[str, ...]) -> bool:
    """With an allow-list, a host must be one of its domains or a subdomain of one."""
    return not allowed or any(host == d or host.endswith("." + d) for d in allowed)


def _query_key(segment: str) -> str:
    return unquote_plus(segment.split("=", 1)[0])


def merge_utm(
    url: str,
    *,
    request: Mapping[str, str] | None = None,
    defaults: Mapping[str, str] | None = None,
    drop: tuple[str, ...] = (),
) -> str:
    """Merge UTM parameters into `url` (already normalised).

    `request` and `defaults` map UTM field names ("source", "campaign", ...)
    to values. Parameters named in `drop` (our click-id parameter) are
    removed from the destination, so a redirect never carries two.
    """
    request = request or {}
    defaults = defaults or {}
    base, hash_, fragment = url.partition("#")
    path, _, query = base.partition("?")
    segments = [s for s in query.split("&") if s] if query else []
    if drop:
        segments = [s for s in segments if _query_key(s) not in drop]
    for name in UTM_FIELDS:
        key = f"utm_{name}"
        positions = [i for i, s in enumerate(segments) if _query_key(s) == key]
        wanted = request.get(name)
        if wanted:
            encoded = f"{key}={quote(wanted, safe='')}"
            if positions:
                segments[positions[0]] = encoded
                for i in reversed(positions[1:]):
                    del segments[i]
            else:
                segments.append(encoded)
        elif not positions and defaults.get(name):
            segments.append(f"{key}={quote(defaults[name], safe='')}")
    merged = path + ("?" + "&".join(segments) if segments else "")
    return merged + (hash_ + fragment if hash_ else "")


def redirect_parts(url: str, param: str) -> tuple[str, str]:
    """Split a destination so the hot path only concatenates the click id.

    Returns (prefix, suffix) with ``prefix + click_id + suffix`` the final
    Location: the click id goes last in the query, before any fragment.
    """
    base, hash_, fragment = url.partition("#")
    if "?" not in base:
        sep = "?"
    elif base.endswith(("?", "&")):
        sep = ""
    else:
        sep = "&"
    return f"{base}{sep}{param}=", (hash_ + fragment if hash_ else "")
