"""What the endpoints refuse before anything is registered: links the pipeline must not
fetch, and clients that send too much too fast.

A shared link is fetched by this machine. A link to the machine itself or to its network
(``http://127.0.0.1:3000/...``, a router's admin page, a cloud's metadata address) would let
anyone holding the token make the pipeline read what only it can reach, so a host that is, or
resolves to, a loopback, private, link-local or reserved address is refused, unless the
operator names it in ``MUSIC_SHARE_ALLOW_HOSTS`` (a NAS serving files on the LAN).
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
import urllib.parse
from collections.abc import Iterable


class Refused(ValueError):
    """A request the endpoint will not act on; the message says why, for the client."""


def check_link(url: str, allow_hosts: Iterable[str] = ()) -> str:
    """``url`` if the pipeline may fetch it, else :class:`Refused`. A host that does not
    resolve here is refused too: a name only some network knows (a cloud's metadata name, a
    cluster's service) may resolve inward where the track is downloaded."""
    if not isinstance(url, str) or not url.strip():
        raise Refused("no URL given: send {\"url\": \"https://...\"}")
    url = url.strip()
    parts = urllib.parse.urlsplit(url)
    if parts.scheme.lower() not in ("http", "https"):
        raise Refused("only http and https links can be shared (not a file, a path or another scheme)")
    host = (parts.hostname or "").rstrip(".").lower()
    if not host:
        raise Refused("the link names no host")
    if host in {h.strip().lower() for h in allow_hosts if h.strip()}:
        return url
    addresses = _addresses(host)
    if not addresses:
        raise Refused(f"{host} could not be looked up here; check the link, or share it again later")
    for address in addresses:
        if _inside(address):
            raise Refused(f"{host} is this machine or its local network ({address}): not fetched from a shared link")
    return url


def _addresses(host: str) -> list[str]:
    try:
        return [str(ipaddress.ip_address(host))]
    except ValueError:
        pass
    try:
        return sorted({info[4][0] for info in socket.getaddrinfo(host, None)})
    except (OSError, UnicodeError):
        return []


def _inside(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return (ip.is_loopback or ip.is_private or ip.is_link_local or ip.is_reserved or ip.is_multicast
            or ip.is_unspecified or not ip.is_global)


class Burst:
    """Per client, at most ``burst`` requests at once and ``rate`` a second after that (a
    token bucket): a phone sharing a few links passes; a script hammering the endpoint gets
    429 with the seconds to wait."""

    def __init__(self, burst: int = 10, rate: float = 1.0, clients: int = 4096) -> None:
        self.burst, self.rate, self.clients = burst, rate, clients
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def wait_s(self, client: str) -> float:
        """0 when ``client`` may go on now (and counts the request), else the seconds to wait.
        An IPv6 client counts by its /64: one machine holds a whole /64 to pick from."""
        client = _bucket(client)
        now = time.monotonic()
        with self._lock:
            tokens, then = self._buckets.get(client, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - then) * self.rate)
            if tokens < 1.0:
                self._buckets[client] = (tokens, now)
                return (1.0 - tokens) / self.rate
            self._buckets[client] = (tokens - 1.0, now)
            if len(self._buckets) > self.clients:  # forget the longest idle
                oldest = min(self._buckets, key=lambda c: self._buckets[c][1])
                del self._buckets[oldest]
            return 0.0


def _bucket(client: str) -> str:
    try:
        ip = ipaddress.ip_address(client.split("%", 1)[0])
    except ValueError:
        return client
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is None:
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip.ipv4_mapped or ip) if isinstance(ip, ipaddress.IPv6Address) else str(ip)
