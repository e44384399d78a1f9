"""The network backend webhook deliveries connect through: the SSRF check at connect time.

The address registration checked may not be the address DNS gives now (rebinding), so the host
is resolved here, every address is vetted, and the connection goes to a vetted IP itself. Every
read and write is also held to the delivery's deadline, so a receiver that trickles its
response one byte at a time cannot keep a worker past it.
"""

from __future__ import annotations

import dataclasses
import ssl
import time
from collections.abc import Iterable
from typing import Any

import httpcore2

from shared.errors import UrlNotAllowedError
from shared.ssrf import PUBLIC_ONLY, TargetPolicy

DEADLINE_PASSED = "the webhook delivery's deadline passed"

# A write of many bytes may take many send() calls, each allowed the whole timeout; writing in
# pieces this small (one send each, in practice) keeps a slowly draining receiver from
# stretching a write past the deadline.
_WRITE_PIECE = 4096


def _time_left(deadline: float, expired: type[Exception]) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise expired(DEADLINE_PASSED)
    return left


def _bounded(timeout: float | None, deadline: float, expired: type[Exception]) -> float:
    left = _time_left(deadline, expired)
    return left if timeout is None else min(timeout, left)


class DeadlineStream(httpcore2.NetworkStream):
    """A stream whose every read and write ends by the deadline (time.monotonic())."""

    def __init__(self, stream: httpcore2.NetworkStream, deadline: float) -> None:
        self._stream = stream
        self._deadline = deadline

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(
            max_bytes, _bounded(timeout, self._deadline, httpcore2.ReadTimeout)
        )

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        view = memoryview(buffer)
        for start in range(0, len(view), _WRITE_PIECE):
            self._stream.write(
                bytes(view[start : start + _WRITE_PIECE]),
                _bounded(timeout, self._deadline, httpcore2.WriteTimeout),
            )

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore2.NetworkStream:
        # server_hostname is the URL's host (httpcore passes it), so the certificate is checked
        # against the name the user registered, not the IP this stream is connected to.
        tls = self._stream.start_tls(
            ssl_context,
            server_hostname,
            _bounded(timeout, self._deadline, httpcore2.ConnectTimeout),
        )
        return DeadlineStream(tls, self._deadline)

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class GuardedBackend(httpcore2.NetworkBackend):
    """Connects only to addresses `policy` allows, and only until `deadline` (time.monotonic()).

    `peer` is the IP the last connection went to, for the attempt log.
    """

    def __init__(self, policy: TargetPolicy, deadline: float) -> None:
        self._policy = policy
        self._deadline = deadline
        self._tcp = httpcore2.SyncBackend()
        self.peer: str | None = None

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore2.SOCKET_OPTION] | None = None,
    ) -> httpcore2.NetworkStream:
        """Resolve and vet `host` (UrlNotAllowedError / UnresolvableHostError propagate), then
        connect to the vetted IPs in order; ConnectError / ConnectTimeout if none answers."""
        # Resolution spends the delivery's time too.
        resolve_s = min(
            self._policy.resolve_timeout_s, _time_left(self._deadline, httpcore2.ConnectTimeout)
        )
        policy = dataclasses.replace(self._policy, resolve_timeout_s=resolve_s)
        addresses = policy.vetted_addresses(host, port)
        options = list(socket_options or [])
        failure: httpcore2.ConnectError | httpcore2.ConnectTimeout | None = None
        for address in addresses:
            try:
                # An IP literal: SyncBackend's getaddrinfo parses it and asks no resolver.
                stream = self._tcp.connect_tcp(
                    address,
                    port,
                    timeout=_bounded(timeout, self._deadline, httpcore2.ConnectTimeout),
                    local_address=local_address,
                    socket_options=options,
                )
            except (httpcore2.ConnectError, httpcore2.ConnectTimeout) as exc:
                failure = exc
                continue
            return self._checked(stream, host)
        assert failure is not None  # vetted_addresses never returns an empty list
        raise failure

    def _checked(self, stream: httpcore2.NetworkStream, host: str) -> DeadlineStream:
        # Belt and braces: judge the address the kernel says we reached, not the one we asked.
        peer = str(stream.get_extra_info("server_addr")[0])
        reason = self._policy.refusal(peer)
        if reason is not None:
            stream.close()
            raise UrlNotAllowedError(
                f"{host} connected to {peer}, {reason}; {PUBLIC_ONLY}",
                details={"host": host, "address": peer, "reason": reason},
            )
        self.peer = peer
        return DeadlineStream(stream, self._deadline)

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore2.SOCKET_OPTION] | None = None,
    ) -> httpcore2.NetworkStream:
        raise UrlNotAllowedError(
            f"webhooks may not target a Unix socket; {PUBLIC_ONLY}", details={"path": path}
        )
