"""The connect-time SSRF check and the delivery deadline, against real sockets."""

from __future__ import annotations

import ipaddress
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from socket import AF_INET, SOCK_DGRAM, socket
from typing import Any

import httpcore2
import pytest

from shared.errors import UrlNotAllowedError
from shared.ssrf import TargetPolicy, UnresolvableHostError, check_target_url
from tests.support.dns_server import DnsServer
from worker.delivery.guarded_backend import DeadlineStream, GuardedBackend

LOOPBACK_ALLOWED = (ipaddress.ip_network("127.0.0.0/8"),)
TIMEOUTS = {"connect": 5.0, "read": 5.0, "write": 5.0, "pool": 5.0}
TRICKLE_BYTES = 20
TRICKLE_EVERY_S = 0.3


class Receiver(ThreadingHTTPServer):
    """A webhook receiver on 127.0.0.1 that counts the connections it accepts."""

    daemon_threads = True
    block_on_close = False

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.tls = tls
        self.accepted = 0
        self.bodies: list[bytes] = []
        self.stopping = threading.Event()

    def get_request(self) -> tuple[socket, Any]:
        sock, client = super().get_request()
        self.accepted += 1
        if self.tls is not None:
            sock = self.tls.wrap_socket(sock, server_side=True)
        return sock, client

    @property
    def port(self) -> int:
        return self.server_address[1]


class _Handler(BaseHTTPRequestHandler):
    server: Receiver

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep test output quiet

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.bodies.append(body)
        if self.path == "/trickle":
            self.send_response(200)
            self.send_header("Content-Length", str(TRICKLE_BYTES))
            self.end_headers()
            self.wfile.flush()
            for _ in range(TRICKLE_BYTES):
                if self.server.stopping.wait(TRICKLE_EVERY_S):
                    return
                self.wfile.write(b"x")
                self.wfile.flush()
            return
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")


def _serve(receiver: Receiver) -> Iterator[Receiver]:
    thread = threading.Thread(target=receiver.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield receiver
    receiver.stopping.set()
    receiver.shutdown()
    thread.join()
    receiver.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    yield from _serve(Receiver())


@pytest.fixture
def dns_server() -> Iterator[DnsServer]:
    with DnsServer() as server:
        yield server


def nameserver(server: DnsServer) -> tuple[str, int]:
    host, port = server.address.rsplit(":", 1)
    return host, int(port)


def post(
    backend: GuardedBackend, url: str, body: bytes = b'{"type":"job.succeeded"}'
) -> httpcore2.Response:
    with httpcore2.ConnectionPool(network_backend=backend, retries=0) as pool:
        response = pool.request(
            "POST",
            url,
            headers={"Content-Type": "application/json"},
            content=body,
            extensions={"timeout": TIMEOUTS},
        )
        return response


def test_allowed_loopback_delivery_succeeds(receiver: Receiver) -> None:
    backend = GuardedBackend(TargetPolicy(allowed_networks=LOOPBACK_ALLOWED), time.monotonic() + 5)
    response = post(backend, f"http://127.0.0.1:{receiver.port}/hook", b'{"n":1}')
    assert response.status == 200
    assert response.content == b"ok"
    assert backend.peer == "127.0.0.1"
    assert receiver.bodies == [b'{"n":1}']


def test_loopback_is_refused_before_any_connection(receiver: Receiver) -> None:
    refused = GuardedBackend(TargetPolicy(), time.monotonic() + 5)
    with pytest.raises(UrlNotAllowedError) as error:
        post(refused, f"http://127.0.0.1:{receiver.port}/hook")
    assert error.value.details["reason"] == "a loopback address"
    assert refused.peer is None
    # The receiver accepts connections one at a time, in order: had the refused delivery
    # connected, this one would be the second.
    post(
        GuardedBackend(TargetPolicy(allowed_networks=LOOPBACK_ALLOWED), time.monotonic() + 5),
        f"http://127.0.0.1:{receiver.port}/hook",
    )
    assert receiver.accepted == 1
    assert len(receiver.bodies) == 1


def test_dns_rebinding_is_refused_at_connect_time(
    receiver: Receiver, dns_server: DnsServer
) -> None:
    policy = TargetPolicy(nameserver=nameserver(dns_server))
    url = f"http://rebind.test:{receiver.port}/hook"
    dns_server.records["rebind.test"] = ["93.184.215.14"]
    check_target_url(url, policy)

    dns_server.records["rebind.test"] = ["127.0.0.1"]
    with pytest.raises(UrlNotAllowedError) as error:
        post(GuardedBackend(policy, time.monotonic() + 5), url)
    assert error.value.details == {
        "host": "rebind.test",
        "address": "127.0.0.1",
        "reason": "a loopback address",
    }
    assert receiver.accepted == 0


def test_connects_to_the_vetted_address_from_the_configured_nameserver(
    receiver: Receiver, dns_server: DnsServer
) -> None:
    # The system resolver has never heard of hook.test; the delivery can only reach the
    # receiver by connecting to the address the configured server gave. 127.0.0.2 comes first
    # and refuses the connection (the receiver listens on 127.0.0.1 only): the next is tried.
    dns_server.records["hook.test"] = ["127.0.0.2", "127.0.0.1"]
    policy = TargetPolicy(allowed_networks=LOOPBACK_ALLOWED, nameserver=nameserver(dns_server))
    backend = GuardedBackend(policy, time.monotonic() + 5)
    response = post(backend, f"http://hook.test:{receiver.port}/hook")
    assert response.status == 200
    assert backend.peer == "127.0.0.1"
    assert receiver.accepted == 1


def test_no_address_answering_is_a_connect_error() -> None:
    with socket() as bound_not_listening:
        bound_not_listening.bind(("127.0.0.1", 0))
        port = bound_not_listening.getsockname()[1]
        backend = GuardedBackend(
            TargetPolicy(allowed_networks=LOOPBACK_ALLOWED), time.monotonic() + 5
        )
        with pytest.raises(httpcore2.ConnectError):
            post(backend, f"http://127.0.0.1:{port}/hook")
    assert backend.peer is None


def test_trickling_response_is_cut_at_the_deadline(receiver: Receiver) -> None:
    # Each byte arrives well within the 5 s read timeout; only the deadline can stop this.
    started = time.monotonic()
    backend = GuardedBackend(TargetPolicy(allowed_networks=LOOPBACK_ALLOWED), started + 1.0)
    with pytest.raises(httpcore2.ReadTimeout):
        post(backend, f"http://127.0.0.1:{receiver.port}/trickle")
    elapsed = time.monotonic() - started
    assert 0.95 <= elapsed < 2.0
    assert receiver.bodies  # the request went through; the response was what was cut


def test_passed_deadline_refuses_to_connect(receiver: Receiver) -> None:
    backend = GuardedBackend(TargetPolicy(allowed_networks=LOOPBACK_ALLOWED), time.monotonic())
    with pytest.raises(httpcore2.ConnectTimeout):
        post(backend, f"http://127.0.0.1:{receiver.port}/hook")
    assert receiver.accepted == 0


def test_resolution_is_held_to_the_deadline() -> None:
    with socket(AF_INET, SOCK_DGRAM) as silent_nameserver:
        silent_nameserver.bind(("127.0.0.1", 0))
        policy = TargetPolicy(nameserver=silent_nameserver.getsockname(), resolve_timeout_s=5)
        started = time.monotonic()
        backend = GuardedBackend(policy, started + 0.5)
        with pytest.raises(UnresolvableHostError):
            post(backend, "http://hook.test/hook")
        assert 0.45 <= time.monotonic() - started < 1.5


def test_slowly_drained_write_is_cut_at_the_deadline() -> None:
    # The receiver reads a little every 10 ms, so no single send() ever waits out the 5 s write
    # timeout: only the deadline can stop a body this size (it would take minutes).
    stop = threading.Event()
    with socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()

        def drain_slowly() -> None:
            conn, _ = listener.accept()
            with conn:
                while conn.recv(262144) and not stop.wait(0.01):
                    pass

        reader = threading.Thread(target=drain_slowly, daemon=True)
        reader.start()
        stream = httpcore2.SyncBackend().connect_tcp("127.0.0.1", listener.getsockname()[1])
        started = time.monotonic()
        deadline_stream = DeadlineStream(stream, started + 0.5)
        try:
            with pytest.raises(httpcore2.WriteTimeout):
                deadline_stream.write(b"x" * (64 * 1024 * 1024), timeout=5)
            assert 0.45 <= time.monotonic() - started < 1.5
        finally:
            stop.set()
            deadline_stream.close()
            reader.join()


def test_deadline_stream_refuses_reads_and_writes_after_the_deadline() -> None:
    stream = DeadlineStream(httpcore2.MockStream([b"data"]), time.monotonic() - 0.001)
    with pytest.raises(httpcore2.ReadTimeout):
        stream.read(10)
    with pytest.raises(httpcore2.WriteTimeout):
        stream.write(b"data")


def test_unix_sockets_are_refused(tmp_path: Path) -> None:
    backend = GuardedBackend(TargetPolicy(), time.monotonic() + 5)
    with (
        httpcore2.ConnectionPool(
            network_backend=backend, uds=str(tmp_path / "s"), retries=0
        ) as pool,
        pytest.raises(UrlNotAllowedError),
    ):
        pool.request("POST", "http://93.184.215.14/hook", content=b"{}")


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for tls.test (and nothing else), made with the openssl CLI."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=tls.test",
            "-addext",
            "subjectAltName=DNS:tls.test",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


@pytest.fixture
def tls_receiver(certificate: tuple[Path, Path]) -> Iterator[Receiver]:
    server_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_tls.load_cert_chain(*certificate)
    yield from _serve(Receiver(tls=server_tls))


def tls_post(backend: GuardedBackend, cafile: Path, url: str) -> httpcore2.Response:
    client_tls = ssl.create_default_context(cafile=str(cafile))
    with httpcore2.ConnectionPool(
        network_backend=backend, ssl_context=client_tls, retries=0
    ) as pool:
        response = pool.request("POST", url, content=b"{}", extensions={"timeout": TIMEOUTS})
        stream = response.extensions["network_stream"]
        assert isinstance(stream, DeadlineStream)
        # (The receiver speaks HTTP/1.0, so the connection is closed by now; its socket stays.)
        assert isinstance(stream.get_extra_info("socket"), ssl.SSLSocket)
        return response


def test_tls_is_verified_against_the_url_host(
    certificate: tuple[Path, Path], tls_receiver: Receiver, dns_server: DnsServer
) -> None:
    # The certificate names tls.test, not 127.0.0.1: this only verifies if the handshake was
    # told the URL's host rather than the address connected to.
    dns_server.records["tls.test"] = ["127.0.0.1"]
    policy = TargetPolicy(allowed_networks=LOOPBACK_ALLOWED, nameserver=nameserver(dns_server))
    backend = GuardedBackend(policy, time.monotonic() + 5)
    response = tls_post(backend, certificate[0], f"https://tls.test:{tls_receiver.port}/hook")
    assert response.status == 200
    assert backend.peer == "127.0.0.1"


def test_tls_stream_keeps_the_deadline(
    certificate: tuple[Path, Path], tls_receiver: Receiver, dns_server: DnsServer
) -> None:
    dns_server.records["tls.test"] = ["127.0.0.1"]
    policy = TargetPolicy(allowed_networks=LOOPBACK_ALLOWED, nameserver=nameserver(dns_server))
    started = time.monotonic()
    backend = GuardedBackend(policy, started + 1.0)
    with pytest.raises(httpcore2.ReadTimeout):
        tls_post(backend, certificate[0], f"https://tls.test:{tls_receiver.port}/trickle")
    assert 0.95 <= time.monotonic() - started < 2.0
