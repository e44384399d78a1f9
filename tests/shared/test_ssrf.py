"""The webhook address policy: which addresses are refused, and how hosts are resolved."""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Iterator

import pytest

from shared.errors import UrlNotAllowedError
from shared.settings import Settings
from shared.ssrf import TargetPolicy, UnresolvableHostError, check_target_url
from tests.support.dns_server import DnsServer

LOOPBACK = "a loopback address"
PRIVATE = "a private address"
LINK_LOCAL = "a link-local address"
DOCUMENTATION = "a documentation address"


@pytest.fixture
def dns_server() -> Iterator[DnsServer]:
    with DnsServer() as server:
        yield server


def via(server: DnsServer) -> TargetPolicy:
    host, port = server.address.rsplit(":", 1)
    return TargetPolicy(nameserver=(host, int(port)))


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", LOOPBACK),
        ("127.255.255.254", LOOPBACK),
        ("10.0.0.1", PRIVATE),
        ("172.16.0.1", PRIVATE),
        ("192.168.1.1", PRIVATE),
        ("169.254.169.254", LINK_LOCAL),
        ("100.64.0.1", "a shared (carrier-grade NAT) address"),
        ("0.0.0.0", "an unspecified address"),
        ("0.1.2.3", "a 'this network' address"),
        ("224.0.0.1", "a multicast address"),
        ("255.255.255.255", "a broadcast address"),
        ("240.0.0.1", "a reserved address"),
        ("198.51.100.1", DOCUMENTATION),
        ("192.0.2.1", DOCUMENTATION),
        ("198.18.0.1", "a benchmarking address"),
        ("::1", LOOPBACK),
        ("::", "an unspecified address"),
        ("fe80::1", LINK_LOCAL),
        ("fc00::1", PRIVATE),
        ("fd12:3456::1", PRIVATE),
        ("ff02::1", "a multicast address"),
        ("2001:db8::1", DOCUMENTATION),
        # IPv6 spellings of IPv4 addresses are judged by the IPv4 address inside.
        ("::ffff:127.0.0.1", LOOPBACK),
        ("::ffff:10.0.0.1", PRIVATE),
        ("::ffff:169.254.169.254", LINK_LOCAL),
        ("::127.0.0.1", LOOPBACK),
        ("2002:7f00:1::1", LOOPBACK),
        ("2002:a9fe:a9fe::", LINK_LOCAL),
        ("64:ff9b::7f00:1", LOOPBACK),
        ("64:ff9b::a00:1", PRIVATE),
        # Teredo: server 65.54.227.120 (public), client 192.0.2.45 (documentation).
        ("2001:0:4136:e378:8000:63bf:3fff:fdd2", DOCUMENTATION),
        ("[::1]", LOOPBACK),
    ],
)
def test_refused_addresses(address: str, reason: str) -> None:
    assert TargetPolicy().refusal(address) == reason


@pytest.mark.parametrize(
    "address",
    [
        "93.184.215.14",
        "1.1.1.1",
        "2606:4700:4700::1111",
        "::ffff:93.184.215.14",
        "2002:5db8:d70e::1",
        "64:ff9b::5db8:d70e",
    ],
)
def test_public_addresses_are_allowed(address: str) -> None:
    assert TargetPolicy().refusal(address) is None


def test_refusal_takes_address_objects() -> None:
    assert TargetPolicy().refusal(ipaddress.ip_address("10.1.2.3")) == PRIVATE
    assert TargetPolicy().refusal(ipaddress.ip_address("1.1.1.1")) is None


def test_allowed_networks_let_their_addresses_through_and_nothing_else() -> None:
    policy = TargetPolicy(
        allowed_networks=(ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))
    )
    for address in ("127.0.0.1", "127.9.9.9", "::1", "::ffff:127.0.0.1", "2002:7f00:1::1"):
        assert policy.refusal(address) is None, address
    assert policy.refusal("10.0.0.1") == PRIVATE
    assert policy.refusal("::ffff:10.0.0.1") == PRIVATE
    assert policy.refusal("::2") is not None
    check_target_url("http://127.0.0.1:8080/hook", policy)
    with pytest.raises(UrlNotAllowedError):
        check_target_url("http://10.0.0.1/hook", policy)


def test_from_settings() -> None:
    settings = Settings(
        webhook_allowed_networks="127.0.0.0/8, fd00::/8",
        webhook_nameserver="[::1]:5353",
        webhook_timeout_s=2,
    )
    policy = TargetPolicy.from_settings(settings)
    assert policy.allowed_networks == (
        ipaddress.ip_network("127.0.0.0/8"),
        ipaddress.ip_network("fd00::/8"),
    )
    assert policy.nameserver == ("::1", 5353)
    assert policy.resolve_timeout_s == 2

    default = TargetPolicy.from_settings(Settings(webhook_allowed_networks=[]))
    assert default.allowed_networks == ()
    assert default.nameserver is None


@pytest.mark.parametrize(
    ("value", "parsed"),
    [
        ("10.0.0.2", ("10.0.0.2", 53)),
        ("10.0.0.2:5300", ("10.0.0.2", 5300)),
        ("[fd00::2]:5353", ("fd00::2", 5353)),
        ("[fd00::2]", ("fd00::2", 53)),
        ("fd00::2", ("fd00::2", 53)),
    ],
)
def test_nameserver_forms(value: str, parsed: tuple[str, int]) -> None:
    assert TargetPolicy.from_settings(Settings(webhook_nameserver=value)).nameserver == parsed


@pytest.mark.parametrize("value", ["dns.internal:53", "10.0.0.2:99999", "[fd00::2:53", "1.2.3.4:x"])
def test_malformed_nameserver_is_an_error(value: str) -> None:
    with pytest.raises(ValueError, match="webhook_nameserver"):
        TargetPolicy.from_settings(Settings(webhook_nameserver=value))


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1/x", LOOPBACK),
        ("http://localhost/x", LOOPBACK),
        ("http://10.0.0.1/x", PRIVATE),
        ("http://169.254.169.254/latest", LINK_LOCAL),
        ("http://[::1]/x", LOOPBACK),
        ("http://[::ffff:127.0.0.1]/x", LOOPBACK),
        ("https://[fe80::1]:8443/x", LINK_LOCAL),
    ],
)
def test_check_target_url_refuses_internal_targets(url: str, reason: str) -> None:
    with pytest.raises(UrlNotAllowedError) as refused:
        check_target_url(url, TargetPolicy())
    assert refused.value.details["reason"] == reason
    assert "webhooks may only target public addresses" in refused.value.message


@pytest.mark.parametrize(
    "url",
    [
        "http://0x7f000001/x",
        "http://2130706433/x",
        "http://0177.0.0.1/",
        "http://127.1/",
        "http://0x7f.0.0.1/",
        "http://127.0.0.1./",
        "http://017700000001/",
    ],
)
def test_check_target_url_refuses_non_canonical_numeric_hosts(url: str) -> None:
    # Even with loopback allowed: these spellings are refused for what they are, not where
    # they point.
    policy = TargetPolicy(allowed_networks=(ipaddress.ip_network("127.0.0.0/8"),))
    with pytest.raises(UrlNotAllowedError) as refused:
        check_target_url(url, policy)
    assert refused.value.details["reason"] == "a non-canonical address"


def test_check_target_url_accepts_public_literals() -> None:
    check_target_url("https://93.184.215.14/hook", TargetPolicy())
    check_target_url("http://[2606:4700:4700::1111]:8080/hook?x=1", TargetPolicy())


def test_check_target_url_refuses_other_schemes() -> None:
    with pytest.raises(UrlNotAllowedError):
        check_target_url("ftp://93.184.215.14/hook", TargetPolicy())


def test_name_resolving_to_loopback_is_refused(dns_server: DnsServer) -> None:
    dns_server.records["Evil.Test"] = ["127.0.0.1"]
    with pytest.raises(UrlNotAllowedError) as refused:
        check_target_url("https://evil.test/hook", via(dns_server))
    message = refused.value.message
    assert "evil.test" in message
    assert "127.0.0.1" in message
    assert LOOPBACK in message
    assert "webhooks may only target public addresses" in message
    assert refused.value.details == {
        "host": "evil.test",
        "address": "127.0.0.1",
        "reason": LOOPBACK,
    }


def test_name_resolving_to_public_address_is_accepted(dns_server: DnsServer) -> None:
    dns_server.records["hooks.example.test"] = ["93.184.215.14", "2606:4700:4700::1111"]
    check_target_url("https://hooks.example.test/hook", via(dns_server))
    assert ("hooks.example.test", "A") in dns_server.queries
    assert ("hooks.example.test", "AAAA") in dns_server.queries


def test_name_that_does_not_exist_is_accepted(dns_server: DnsServer) -> None:
    check_target_url("https://not-yet.example.test/hook", via(dns_server))
    assert ("not-yet.example.test", "A") in dns_server.queries
    with pytest.raises(UnresolvableHostError):
        via(dns_server).resolve("not-yet.example.test", 443)


def test_one_private_address_among_public_ones_is_refused(dns_server: DnsServer) -> None:
    dns_server.records["mixed.test"] = ["93.184.215.14", "10.0.0.1"]
    with pytest.raises(UrlNotAllowedError) as refused:
        check_target_url("https://mixed.test/hook", via(dns_server))
    assert refused.value.details["address"] == "10.0.0.1"

    dns_server.records["mixed.test"] = ["93.184.215.14", "fd00::1"]
    with pytest.raises(UrlNotAllowedError) as refused:
        via(dns_server).vetted_addresses("mixed.test", 443)
    assert refused.value.details["address"] == "fd00::1"


def test_nameserver_setting_routes_all_resolution_through_it(dns_server: DnsServer) -> None:
    dns_server.records["hook.test"] = ["93.184.215.14", "2606:4700:4700::1111"]
    policy = TargetPolicy.from_settings(Settings(webhook_nameserver=dns_server.address))
    assert policy.vetted_addresses("hook.test", 443) == ["93.184.215.14", "2606:4700:4700::1111"]
    assert dns_server.queries


@pytest.mark.parametrize("host", ["localhost", "LOCALHOST.", "hooks.localhost"])
def test_localhost_names_are_loopback_whatever_the_nameserver_says(
    dns_server: DnsServer, host: str
) -> None:
    # RFC 6761: a DNS server answering a public address for localhost must not make it public.
    dns_server.records[host.rstrip(".").lower()] = ["93.184.215.14"]
    policy = TargetPolicy.from_settings(Settings(webhook_nameserver=dns_server.address))
    assert policy.resolve(host, 80) == ["127.0.0.1", "::1"]
    with pytest.raises(UrlNotAllowedError):
        check_target_url(f"http://{host}/x", policy)
    assert dns_server.queries == []


def test_ip_literals_resolve_to_themselves(dns_server: DnsServer) -> None:
    policy = via(dns_server)
    assert policy.resolve("10.0.0.1", 80) == ["10.0.0.1"]
    assert policy.resolve("[::1]", 80) == ["::1"]
    assert dns_server.queries == []


def test_system_resolver_reads_etc_hosts() -> None:
    assert "127.0.0.1" in TargetPolicy().resolve("localhost", 80)


def test_silent_nameserver_times_out_within_the_lifetime() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        policy = TargetPolicy(nameserver=silent.getsockname(), resolve_timeout_s=0.3)
        started = time.monotonic()
        with pytest.raises(UnresolvableHostError):
            policy.resolve("hook.test", 443)
        elapsed = time.monotonic() - started
        assert 0.25 <= elapsed < 1.5
        # Registration accepts what it cannot resolve; delivery checks again.
        check_target_url("https://hook.test/x", policy)
