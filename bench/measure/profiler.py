"""py-spy profiles of a process tree during a window: a flame graph and a top-frames table.

py-spy samples the thread holding the GIL without stopping the target (--nonblocking), following
children (gunicorn's workers). One recorder writes the SVG, a second the raw collapsed stacks that
top_frames() turns into text, since py-spy writes one format per run. A process of 200 threads
takes py-spy far longer to sample than one of 8, so the caller picks the rate (py-spy says in its
log when it fell behind).
"""

from __future__ import annotations

import contextlib
import re
import signal
import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from devstack.processes import BIN

TOP = 30
_LINE_NUMBER = re.compile(r":\d+\)$")


def _recorder(pid: int, output: Path, fmt: str, log: Path, rate_hz: int) -> subprocess.Popen[bytes]:
    # --gil: only the thread holding the GIL is sampled, so the profile shows where the CPU of a
    # GIL-bound process goes rather than which of its 200 threads are waiting on a socket.
    argv = [str(BIN / "py-spy"), "record", "--pid", str(pid), "--subprocesses", "--nonblocking"]
    argv += ["--gil"]
    argv += ["--rate", str(rate_hz), "--format", fmt, "--output", str(output)]
    with log.open("ab") as sink:
        return subprocess.Popen(argv, stdout=sink, stderr=subprocess.STDOUT)


@contextlib.contextmanager
def profiled(pid: int, out_dir: Path, name: str, rate_hz: int) -> Iterator[None]:
    """Record `pid`'s tree at `rate_hz` while the block runs; writes <name>.svg and
    <name>-top.txt."""
    out_dir.mkdir(parents=True, exist_ok=True)
    log = out_dir / f"{name}-py-spy.log"
    raw = out_dir / f"{name}.collapsed.txt"
    recorders = [
        _recorder(pid, out_dir / f"{name}.svg", "flamegraph", log, rate_hz),
        _recorder(pid, raw, "raw", log, rate_hz),
    ]
    try:
        yield
    finally:
        # SIGINT is py-spy's "stop and write what you have".
        for recorder in recorders:
            recorder.send_signal(signal.SIGINT)
        for recorder in recorders:
            try:
                recorder.wait(60)
            except subprocess.TimeoutExpired:
                recorder.kill()
                recorder.wait(5)
    if raw.exists():
        (out_dir / f"{name}-top.txt").write_text(top_frames(raw.read_text(), rate_hz))


def top_frames(collapsed: str, rate_hz: int, top: int = TOP) -> str:
    """The frames with most samples, by own time (leaf) and by total time (anywhere on the
    stack), from py-spy's raw output: one `frame;frame;...;leaf count` line per stack."""
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    samples = 0
    for line in collapsed.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        # One function, wherever in it the sample landed; the "process <pid>" frames that
        # --subprocesses adds are every stack's root, not a place where time goes.
        frames = [
            _LINE_NUMBER.sub(")", frame)
            for frame in stack.split(";")
            if not frame.startswith("process ")
        ]
        if not frames:
            continue
        samples += count
        own[frames[-1]] += count
        for frame in set(frames):
            total[frame] += count
    lines = [f"{samples} samples at {rate_hz} Hz (threads waiting idle are not sampled)", ""]
    for title, counter in (("own time", own), ("total time (inclusive)", total)):
        lines.append(f"top {top} by {title}:")
        for frame, count in counter.most_common(top):
            lines.append(f"{100 * count / max(samples, 1):6.1f}%  {frame}")
        lines.append("")
    return "\n".join(lines)
