"""A real UDP DNS server for tests: answers A/AAAA from a mapping the test can change at will.

Every answer has TTL 0, so flipping a name's records between two lookups is DNS rebinding.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
from types import TracebackType

import dns.exception
import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset

# How often the serving thread looks up from recvfrom to see whether it should stop.
_POLL_S = 0.05


class DnsServer:
    """`records` maps a name (any case, no trailing dot) to its IPs: A for IPv4, AAAA for IPv6,
    answered in the order listed. Unknown names get NXDOMAIN. `queries` logs (name, type)."""

    def __init__(self, records: dict[str, list[str]] | None = None) -> None:
        self.records: dict[str, list[str]] = dict(records or {})
        self.queries: list[tuple[str, str]] = []
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    def start(self) -> tuple[str, int]:
        """Bind 127.0.0.1 on a random port and serve in a daemon thread; returns (host, port)."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(_POLL_S)
        self._sock = sock
        self._stopping.clear()
        self._thread = threading.Thread(target=self._serve, name="test-dns", daemon=True)
        self._thread.start()
        return sock.getsockname()

    @property
    def address(self) -> str:
        """ "host:port", the form `webhook_nameserver` takes."""
        assert self._sock is not None, "start() the server first"
        host, port = self._sock.getsockname()
        return f"{host}:{port}"

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __enter__(self) -> DnsServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _lookup(self, name: str) -> list[str] | None:
        for key, addresses in list(self.records.items()):
            if key.rstrip(".").lower() == name:
                return list(addresses)
        return None

    def _answer(self, query: dns.message.Message) -> dns.message.Message:
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        for question in query.question:
            name = question.name.to_text(omit_final_dot=True).lower()
            self.queries.append((name, dns.rdatatype.to_text(question.rdtype)))
            addresses = self._lookup(name)
            if addresses is None:
                response.set_rcode(dns.rcode.NXDOMAIN)
                continue
            version = {dns.rdatatype.A: 4, dns.rdatatype.AAAA: 6}.get(question.rdtype)
            matching = [a for a in addresses if ipaddress.ip_address(a).version == version]
            if matching:
                rdtype = dns.rdatatype.to_text(question.rdtype)
                response.answer.append(
                    dns.rrset.from_text_list(question.name, 0, "IN", rdtype, matching)
                )
        return response

    def _serve(self) -> None:
        sock = self._sock
        assert sock is not None
        while not self._stopping.is_set():
            try:
                wire, client = sock.recvfrom(4096)
            except TimeoutError:
                continue
            try:
                query = dns.message.from_wire(wire)
            except dns.exception.DNSException:
                continue  # not DNS: ignored, as a real server would
            # Unshuffled, unlike a real server: tests rely on the order they wrote the records in.
            sock.sendto(self._answer(query).to_wire(want_shuffle=False), client)
