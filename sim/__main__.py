"""CLI: `python -m sim --host 127.0.0.1 --port 8090 --latency-ms 0`."""

import argparse
import logging
import signal
import sys
import threading
from types import FrameType

from werkzeug.serving import make_server

from sim.app import create_app
from sim.config import SimConfig

log = logging.getLogger("sim")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line flags; defaults suit `make dev`."""
    parser = argparse.ArgumentParser(prog="python -m sim", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument(
        "--latency-ms", type=float, default=0.0, help="delay before every completion answer"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Serve until SIGTERM or SIGINT, then shut down cleanly and return 0."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(name)s %(message)s")
    server = make_server(
        args.host, args.port, create_app(SimConfig(latency_ms=args.latency_ms)), threaded=True
    )
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
    server.shutdown()
    serving.join()
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
