"""Which addresses promptq may send webhooks to (SSRF guard).

The API checks a URL when it is registered (`check_target_url`); the worker checks again at
connect time (worker/delivery/guarded_backend.py), against the address it actually connects to,
because DNS can say something different by then (rebinding).
"""

from __future__ import annotations

import ipaddress
import re
import socket
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import dns.exception
import dns.rdatatype
import dns.resolver

from shared.errors import UrlNotAllowedError
from shared.settings import Settings, parse_nameserver

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

DEFAULT_RESOLVE_TIMEOUT_S = 5.0
PUBLIC_ONLY = "webhooks may only target public addresses"

_V4 = ipaddress.IPv4Network
_V6 = ipaddress.IPv6Network

# Checked in order, so a narrower range names its reason before a wider one that contains it.
# Whatever is not listed still has to pass `is_global`; the list is there for the reasons.
_REFUSED_V4: tuple[tuple[ipaddress.IPv4Network, str], ...] = (
    (_V4("0.0.0.0/32"), "an unspecified address"),
    (_V4("0.0.0.0/8"), "a 'this network' address"),
    (_V4("127.0.0.0/8"), "a loopback address"),
    (_V4("10.0.0.0/8"), "a private address"),
    (_V4("172.16.0.0/12"), "a private address"),
    (_V4("192.168.0.0/16"), "a private address"),
    (_V4("100.64.0.0/10"), "a shared (carrier-grade NAT) address"),
    (_V4("169.254.0.0/16"), "a link-local address"),
    (_V4("192.0.0.0/24"), "a reserved address"),
    (_V4("192.0.2.0/24"), "a documentation address"),
    (_V4("198.51.100.0/24"), "a documentation address"),
    (_V4("203.0.113.0/24"), "a documentation address"),
    (_V4("192.88.99.0/24"), "a reserved address"),
    (_V4("198.18.0.0/15"), "a benchmarking address"),
    (_V4("224.0.0.0/4"), "a multicast address"),
    (_V4("255.255.255.255/32"), "a broadcast address"),
    (_V4("240.0.0.0/4"), "a reserved address"),
)
_REFUSED_V6: tuple[tuple[ipaddress.IPv6Network, str], ...] = (
    (_V6("::/128"), "an unspecified address"),
    (_V6("::1/128"), "a loopback address"),
    (_V6("64:ff9b:1::/48"), "a private address"),
    (_V6("100::/64"), "a reserved address"),
    (_V6("2001:db8::/32"), "a documentation address"),
    (_V6("3fff::/20"), "a documentation address"),
    (_V6("fc00::/7"), "a private address"),
    (_V6("fe80::/10"), "a link-local address"),
    (_V6("fec0::/10"), "a site-local address"),
    (_V6("ff00::/8"), "a multicast address"),
)
_IPV4_COMPATIBLE = _V6("::/96")
_NAT64 = _V6("64:ff9b::/96")

# The last label of a host that URL parsers (and inet_aton) read as a number, which makes the
# whole host an IPv4 address in some spelling: 2130706433, 0x7f000001, 0177.0.0.1, 127.1.
_NUMERIC_LABEL = re.compile(r"^(?:[0-9]+|0x[0-9a-f]*)$", re.IGNORECASE)
_DEFAULT_PORTS = {"http": 80, "https": 443}


class UnresolvableHostError(Exception):
    """DNS said the name does not exist or has no address, or resolution failed."""


def _embedded_ipv4(address: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address stands for (mapped, compatible, 6to4, NAT64, Teredo).

    Python 3.11's flags judge most of these by the IPv6 range alone (2002:7f00:1::1 counts as
    global), so they are unwrapped here and the IPv4 address is what gets judged.
    """
    if address.ipv4_mapped is not None:
        return [address.ipv4_mapped]
    if address.sixtofour is not None:
        return [address.sixtofour]
    if address.teredo is not None:
        return list(address.teredo)
    if address in _NAT64 or (address in _IPV4_COMPATIBLE and int(address) > 1):
        return [ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)]
    return []


def _refusal_reason(address: IPAddress) -> str | None:
    table = _REFUSED_V4 if address.version == 4 else _REFUSED_V6
    for network, reason in table:
        if address in network:
            return reason
    if not address.is_global:
        return "not a globally routable address"
    return None


def _parse_address(address: str | IPAddress) -> IPAddress:
    if isinstance(address, str):
        return ipaddress.ip_address(address.removeprefix("[").removesuffix("]"))
    return address


def _ip_literal(host: str) -> IPAddress | None:
    try:
        return _parse_address(host)
    except ValueError:
        return None


def _is_localhost(host: str) -> bool:
    name = host.rstrip(".").lower()
    return name == "localhost" or name.endswith(".localhost")


def _unique(addresses: list[str]) -> list[str]:
    return list(dict.fromkeys(addresses))


@dataclass(frozen=True)
class TargetPolicy:
    """Which addresses webhook deliveries may connect to, and how their hosts are resolved."""

    allowed_networks: tuple[IPNetwork, ...] = ()
    nameserver: tuple[str, int] | None = None
    resolve_timeout_s: float = DEFAULT_RESOLVE_TIMEOUT_S

    @classmethod
    def from_settings(cls, settings: Settings) -> TargetPolicy:
        """The policy the settings describe; ValueError on a malformed network or nameserver."""
        return cls(
            allowed_networks=tuple(
                ipaddress.ip_network(network) for network in settings.webhook_allowed_networks
            ),
            nameserver=(
                parse_nameserver(settings.webhook_nameserver)
                if settings.webhook_nameserver
                else None
            ),
            # Registration waits on this inside an API request; keep it short.
            resolve_timeout_s=min(DEFAULT_RESOLVE_TIMEOUT_S, settings.webhook_timeout_s),
        )

    def refusal(self, address: str | IPAddress) -> str | None:
        """None if promptq may connect to this address, else a short human reason such as
        'a loopback address' / 'a private address' / 'a link-local address' ..."""
        parsed = _parse_address(address)
        forms: list[IPAddress] = [parsed]
        if parsed.version == 6:
            forms.extend(_embedded_ipv4(parsed))
        if any(form in network for form in forms for network in self.allowed_networks):
            return None
        if len(forms) > 1:
            # An IPv6 form of IPv4 addresses goes wherever the IPv4 addresses go.
            for embedded in forms[1:]:
                reason = _refusal_reason(embedded)
                if reason is not None:
                    return reason
            return None
        return _refusal_reason(parsed)

    def resolve(self, host: str, port: int) -> list[str]:
        """Every address `host` resolves to (an IP literal resolves to itself, brackets stripped);
        system getaddrinfo (honours /etc/hosts) unless nameserver is set, then dnspython A+AAAA
        against that server with resolve_timeout_s as its lifetime (which bounds getaddrinfo too).
        UnresolvableHostError if none."""
        literal = _ip_literal(host)
        if literal is not None:
            return [str(literal)]
        if _is_localhost(host):
            # RFC 6761: localhost names are loopback whatever a DNS server may answer.
            return ["127.0.0.1", "::1"]
        if self.nameserver is None:
            addresses = self._resolve_system(host, port)
        else:
            addresses = self._resolve_nameserver(host, *self.nameserver)
        if not addresses:
            raise UnresolvableHostError(f"{host} has no address")
        return addresses

    def _resolve_system(self, host: str, port: int) -> list[str]:
        # getaddrinfo takes no timeout; a daemon thread bounds the wait (and is left behind,
        # harmlessly, if the system resolver hangs).
        outcome: list[list[str] | Exception] = []

        def lookup() -> None:
            try:
                infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
                outcome.append(_unique([str(info[4][0]) for info in infos]))
            except (OSError, UnicodeError) as exc:
                outcome.append(exc)

        thread = threading.Thread(target=lookup, name="ssrf-getaddrinfo", daemon=True)
        thread.start()
        thread.join(self.resolve_timeout_s)
        if not outcome:
            raise UnresolvableHostError(f"resolving {host} timed out")
        result = outcome[0]
        if isinstance(result, Exception):
            raise UnresolvableHostError(f"{host} does not resolve: {result}") from result
        return result

    def _resolve_nameserver(self, host: str, server: str, server_port: int) -> list[str]:
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = [server]
        resolver.port = server_port
        deadline = time.monotonic() + self.resolve_timeout_s
        addresses: list[str] = []
        for rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
            try:
                answer = resolver.resolve(
                    host,
                    rdtype,
                    search=False,
                    raise_on_no_answer=False,
                    lifetime=max(deadline - time.monotonic(), 0.001),
                )
            except dns.resolver.NXDOMAIN:
                continue
            except (dns.exception.DNSException, OSError, UnicodeError) as exc:
                raise UnresolvableHostError(f"{host} does not resolve: {exc}") from exc
            addresses.extend(rdata.address for rdata in answer)
        return _unique(addresses)

    def vetted_addresses(self, host: str, port: int) -> list[str]:
        """resolve(), then UrlNotAllowedError if ANY address is refused (so a name with one public
        and one private address is refused). Message names the host, the address and the reason,
        and says webhooks may only target public addresses."""
        addresses = self.resolve(host, port)
        bare_host = host.removeprefix("[").removesuffix("]")
        for address in addresses:
            reason = self.refusal(address)
            if reason is None:
                continue
            if _ip_literal(host) is None:
                message = f"{bare_host} resolves to {address}, {reason}; {PUBLIC_ONLY}"
            else:
                message = f"{bare_host} is {reason}; {PUBLIC_ONLY}"
            raise UrlNotAllowedError(
                message, details={"host": bare_host, "address": address, "reason": reason}
            )
        return addresses


def check_target_url(url: str, policy: TargetPolicy) -> None:
    """Registration-time check of an http(s) URL (already syntactically validated by the API).
    IP-literal host (IPv4 dotted, or [IPv6]) -> refusal check. Host that is not a canonical form
    (all-digit / hex / octal numeric forms like 2130706433, 0x7f000001, 0177.0.0.1, 127.1) ->
    UrlNotAllowedError. DNS name -> vetted_addresses(); a name that does not resolve at all is
    ACCEPTED (it may be created later; every delivery re-checks at connect time)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not host:
        raise UrlNotAllowedError("a webhook URL must be http(s) with a host", details={"url": url})
    try:
        port = parts.port or _DEFAULT_PORTS[scheme]
    except ValueError:
        raise UrlNotAllowedError("the webhook URL's port is invalid", {"url": url}) from None

    last_label = host.rstrip(".").rsplit(".", 1)[-1]
    if ":" in host or _NUMERIC_LABEL.match(last_label):
        if _ip_literal(host) is None:
            raise UrlNotAllowedError(
                f"{host} is not a canonical IP address; write IPv4 as four decimal numbers "
                f"(a.b.c.d) and IPv6 in brackets; {PUBLIC_ONLY}",
                details={"host": host, "reason": "a non-canonical address"},
            )
        policy.vetted_addresses(host, port)
        return
    try:
        policy.vetted_addresses(host, port)
    except UnresolvableHostError:
        # Maybe not created yet: every delivery checks the address it connects to anyway.
        return
