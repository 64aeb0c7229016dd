"""Outbound HTTP proxies from the environment, read once at startup.

The gateway honours HTTPS_PROXY/HTTP_PROXY/NO_PROXY for its provider calls. aiohttp's
`trust_env=True` would re-read the environment and parse ~/.netrc (in a thread) on every
request, which the benchmark showed as a third of the gateway's CPU; this module reads the
proxies once and answers per upstream origin from a cache. The environment is not re-read:
a proxy change needs a restart, as for any process setting. Used by `client.py`.
"""

from __future__ import annotations

import urllib.request

from aiohttp import BasicAuth, helpers
from yarl import URL

Proxy = tuple[URL | None, BasicAuth | None]
_NONE: Proxy = (None, None)


class EnvProxies:
    """The proxy (and its credentials) for each upstream origin, per the environment."""

    def __init__(self) -> None:
        self._proxies = helpers.proxies_from_env()
        self._cache: dict[tuple[str, str], Proxy] = {}

    def for_url(self, url: str) -> Proxy:
        """(proxy URL, proxy auth) for `url`, or (None, None) to connect directly."""
        if not self._proxies:
            return _NONE
        parsed = URL(url)
        origin = (parsed.scheme, parsed.host or "")
        found = self._cache.get(origin)
        if found is None:
            found = self._lookup(*origin)
            self._cache[origin] = found
        return found

    def _lookup(self, scheme: str, host: str) -> Proxy:
        info = self._proxies.get(scheme)
        if info is None or (host and urllib.request.proxy_bypass(host)):
            return _NONE
        return info.proxy, info.proxy_auth
