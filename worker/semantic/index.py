"""This process's index of the semantic cache: the sign codes of each scope it has looked up,
kept in memory and brought up to date from PostgreSQL before every lookup.

Ranking 100,000 entries by Hamming distance is a few milliseconds of numpy here, against tens
of milliseconds for the same ranking in SQL (bit_count over every row of the scope), so only
the newest rows travel at each lookup: those with an id above the last one seen, less an
overlap, since an id is drawn before its row commits and a lower one can become visible after
a higher one. The overlap reaches back OVERLAP_IDS ids, but no further than the highest id
held OVERLAP_S ago: a row is missed only if its insert was in flight for longer than both.
Rows already held are recognised and skipped. Expired entries are masked at
ranking time and dropped once they are half of a scope.

A process holds at most `max_entries` codes (about 50 bytes each); past that, the scopes used
least recently are forgotten and read again in full if asked for. With a thread pool one index
serves every slot of a worker; a prefork pool holds one per child process.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from shared.repositories.semantic_cache import Code
from worker.semantic.codes import CODE_BITS

# How long, and for how many ids drawn by other inserts, an insert may be in flight and its row
# still be found: each insert is a single autocommit statement, in flight for milliseconds.
OVERLAP_IDS = 1000
OVERLAP_S = 2.0
_WORDS = CODE_BITS // 64
_FAR = np.iinfo(np.int32).max

Refresh = Callable[[int], list[Code]]


class _Scope:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.ids: npt.NDArray[np.int64] = np.empty(0, np.int64)
        self.codes: npt.NDArray[np.uint64] = np.empty((0, _WORDS), np.uint64)
        self.expires: npt.NDArray[np.float64] = np.empty(0, np.float64)
        self.max_id = 0
        # (monotonic time, max_id then), oldest first: the marks the overlap may stop at.
        self.marks: deque[tuple[float, int]] = deque()

    def _floor(self, now: float) -> int:
        while len(self.marks) > 1 and self.marks[1][0] <= now - OVERLAP_S:
            self.marks.popleft()
        settled = self.marks[0][1] if self.marks and self.marks[0][0] <= now - OVERLAP_S else 0
        return max(self.max_id - OVERLAP_IDS, settled, 0)

    def refresh(self, read: Refresh) -> None:
        now = time.monotonic()
        rows = read(self._floor(now))
        if rows and rows[0].id <= self.max_id:
            held = set(self.ids[self.ids > self.max_id - OVERLAP_IDS].tolist())
            rows = [row for row in rows if row.id not in held]
        if not rows:
            return
        self.ids = np.concatenate([self.ids, np.fromiter((r.id for r in rows), np.int64)])
        codes = np.frombuffer(b"".join(r.code for r in rows), np.uint64).reshape(-1, _WORDS)
        self.codes = np.concatenate([self.codes, codes])
        self.expires = np.concatenate(
            [self.expires, np.fromiter((r.expires_at for r in rows), np.float64)]
        )
        self.max_id = max(self.max_id, int(self.ids.max()))
        self.marks.append((now, self.max_id))

    def nearest(self, code: bytes, limit: int, now: float) -> list[int]:
        live = self.expires > now
        count = int(live.sum())
        if count * 2 < len(self.ids):
            self.ids, self.codes, self.expires = (
                self.ids[live],
                self.codes[live],
                self.expires[live],
            )
            live = np.ones(len(self.ids), bool)
        if count == 0:
            return []
        query = np.frombuffer(code, np.uint64)
        distance = np.bitwise_count(self.codes ^ query).sum(axis=1, dtype=np.int32)
        distance[~live] = _FAR
        kept = min(limit, count)
        best = np.argpartition(distance, kept - 1)[:kept]
        best = best[np.argsort(distance[best], kind="stable")]
        return self.ids[best].tolist()

    def __len__(self) -> int:
        return len(self.ids)


class CodeIndex:
    def __init__(self, max_entries: int) -> None:
        self._max_entries = max_entries
        self._scopes: OrderedDict[bytes, _Scope] = OrderedDict()
        self._lock = threading.Lock()

    def nearest(self, scope: bytes, code: bytes, limit: int, read: Refresh) -> list[int]:
        """The ids of the `limit` live entries of `scope` whose codes are nearest `code`, best
        first, after reading what is new with `read(after_id)`."""
        with self._lock:
            held = self._scopes.get(scope)
            if held is None:
                held = self._scopes[scope] = _Scope()
            self._scopes.move_to_end(scope)
        with held.lock:
            held.refresh(read)
            found = held.nearest(code, limit, time.time())
        self._evict(keep=scope)
        return found

    def _evict(self, keep: bytes) -> None:
        with self._lock:
            total = sum(len(s) for s in self._scopes.values())
            while total > self._max_entries and len(self._scopes) > 1:
                oldest = next(iter(self._scopes))
                if oldest == keep:
                    self._scopes.move_to_end(keep)
                    continue
                total -= len(self._scopes.pop(oldest))
