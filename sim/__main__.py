"""CLI: `python -m sim --host 127.0.0.1 --port 8090 --latency-ms 0 [--fault KIND ...]`."""

import argparse
import logging
import signal
import sys
import threading
from types import FrameType

from werkzeug.serving import make_server

from sim.app import FAULTS_EXTENSION, create_app
from sim.config import SimConfig
from sim.fault_kinds import FaultKind

log = logging.getLogger("sim")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line flags; defaults suit `make dev`."""
    parser = argparse.ArgumentParser(prog="python -m sim", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument(
        "--latency-ms", type=float, default=0.0, help="delay before every completion answer"
    )
    parser.add_argument(
        "--latency-jitter-ms", type=float, default=0.0, help="up to this much extra delay"
    )
    parser.add_argument(
        "--fault",
        choices=[kind.value for kind in FaultKind],
        help="inject this fault into completions (PUT /sim/faults overrides it per model)",
    )
    parser.add_argument(
        "--fault-rate", type=float, default=1.0, help="share of calls that get --fault (0..1)"
    )
    parser.add_argument(
        "--retry-after", type=float, default=1.0, help="seconds a rate_limit fault announces"
    )
    parser.add_argument(
        "--hang-s", type=float, default=120.0, help="how long a hang holds a connection"
    )
    parser.add_argument("--seed", type=int, help="seed for latency jitter")
    args = parser.parse_args(argv)
    try:
        args.config = config_from(args)
    except ValueError as exc:
        parser.error(str(exc))
    return args


def config_from(args: argparse.Namespace) -> SimConfig:
    """The SimConfig the flags describe; ValueError for out-of-range values."""
    return SimConfig(
        latency_ms=args.latency_ms,
        latency_jitter_ms=args.latency_jitter_ms,
        fault=args.fault,
        fault_rate=args.fault_rate,
        retry_after_s=args.retry_after,
        hang_s=args.hang_s,
        seed=args.seed,
    )


def main(argv: list[str] | None = None) -> int:
    """Serve until SIGTERM or SIGINT, then shut down cleanly and return 0."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(name)s %(message)s")
    app = create_app(args.config)
    server = make_server(args.host, args.port, app, threaded=True)
    stop = threading.Event()

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        log.info("received %s, shutting down", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    # serve_forever runs off the main thread because server.shutdown() blocks until the
    # serving loop exits, which would deadlock if called from a handler interrupting it.
    serving = threading.Thread(target=server.serve_forever, name="sim-server")
    serving.start()
    log.info("listening on http://%s:%d", args.host, server.server_port)
    stop.wait()
    # Hanging and delayed calls end now instead of pinning their threads for minutes.
    app.extensions[FAULTS_EXTENSION].release()
    server.shutdown()
    serving.join()
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
