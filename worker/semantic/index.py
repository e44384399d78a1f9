"""This process's index of the semantic cache: the sign codes of each scope it has looked up,
kept in memory and brought up to date from PostgreSQL before every lookup.

Ranking 100,000 entries by Hamming distance is a few milliseconds of numpy here, against tens
of milliseconds for the same ranking in SQL (bit_count over every row of the scope), so only
the newest rows travel at each lookup: those with an id above the highest one held, plus those
a little below it that were created in the last OVERLAP_S seconds, since an id is drawn before
its row commits and a lower one can become visible after a higher one. A row is missed only if
its insert was in flight for longer than OVERLAP_S, or while OVERLAP_IDS other ids were drawn.
Rows already held are recognised and skipped. Expired entries are masked at ranking time and
dropped once they are half of a scope.

A process holds at most `max_entries` codes (about 50 bytes each); past that, the scopes used
least recently are forgotten and read again in full if asked for. With a thread pool one index
serves every slot of a worker; a prefork pool holds one per child process.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from shared.repositories.semantic_cache import Code
from worker.semantic.codes import CODE_BITS

# How long, and for how many ids drawn by other inserts, an insert may be in flight and its row
# still be found: each insert is a single autocommit statement, in flight for milliseconds.
OVERLAP_IDS = 1000
OVERLAP_S = 2
_WORDS = CODE_BITS // 64
_FAR = np.iinfo(np.uint16).max

# read(after, newest): the live rows of the scope with an id above `newest`, and those above
# `after` created in the last OVERLAP_S seconds.
Refresh = Callable[[int, int], list[Code]]


class _Scope:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.ids: npt.NDArray[np.int64] = np.empty(0, np.int64)
        # One row per 64-bit word of the codes, one column per entry: each word's XOR and
        # popcount run over contiguous memory (ten times faster than entry by entry).
        self.codes: npt.NDArray[np.uint64] = np.empty((_WORDS, 0), np.uint64)
        self.expires: npt.NDArray[np.float64] = np.empty(0, np.float64)
        self.max_id = 0

    def refresh(self, read: Refresh) -> None:
        rows = read(max(0, self.max_id - OVERLAP_IDS), self.max_id)
        if rows and rows[0].id <= self.max_id:
            held = set(self.ids[self.ids > self.max_id - OVERLAP_IDS].tolist())
            rows = [row for row in rows if row.id not in held]
        if not rows:
            return
        self.ids = np.concatenate([self.ids, np.fromiter((r.id for r in rows), np.int64)])
        codes = np.frombuffer(b"".join(r.code for r in rows), np.uint64).reshape(-1, _WORDS)
        self.codes = np.concatenate([self.codes, codes.T], axis=1)
        self.expires = np.concatenate(
            [self.expires, np.fromiter((r.expires_at for r in rows), np.float64)]
        )
        self.max_id = max(self.max_id, int(self.ids.max()))

    def nearest(self, code: bytes, limit: int, now: float) -> list[int]:
        live = self.expires > now
        count = int(live.sum())
        if count * 2 < len(self.ids):
            self.ids, self.expires = self.ids[live], self.expires[live]
            self.codes = np.ascontiguousarray(self.codes[:, live])
            live = np.ones(len(self.ids), bool)
        if count == 0:
            return []
        query = np.frombuffer(code, np.uint64)
        distance = np.bitwise_count(self.codes[0] ^ query[0]).astype(np.uint16)
        for word in range(1, _WORDS):
            distance += np.bitwise_count(self.codes[word] ^ query[word])
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
        first, after reading what is new with `read`."""
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
