"""``wsgi.input`` for a body that arrives in pieces while the app reads it.

The loop thread calls :meth:`BodyInput.feed` for each piece (the last with
``more=False``) and :meth:`BodyInput.abort` when the client leaves first; the
app's worker thread reads, blocking until data, the end, or the abort (then
``OSError``: a truncated upload is never passed off as complete). Past
``high_water`` unread bytes, ``on_pause``/``on_resume`` (loop-side callbacks
run through the Manager) tell the connection to stop and resume reading.

The WSGI adapter hands complete bodies to ``io.BytesIO`` today; this is the
piece it uses once the core streams request bodies (``on_http_body``).
"""
from __future__ import annotations

import threading
from typing import Callable, List, Optional


class BodyInput:
    def __init__(self, high_water: int = 1 << 20, on_pause: Optional[Callable[[], None]] = None,
                 on_resume: Optional[Callable[[], None]] = None) -> None:
        self._cond = threading.Condition()
        self._chunks: List[bytes] = []
        self._buffered = 0
        self._ended = False
        self._error: Optional[str] = None
        self._paused = False
        self.high_water = high_water
        self.on_pause, self.on_resume = on_pause, on_resume
        self.received = 0

    # ---- loop thread ----

    def feed(self, data: bytes, more: bool) -> None:
        with self._cond:
            if data:
                self._chunks.append(data)
                self._buffered += len(data)
                self.received += len(data)
            if not more:
                self._ended = True
            pause = more and not self._paused and self._buffered >= self.high_water
            if pause:
                self._paused = True
            self._cond.notify_all()
        if pause and self.on_pause is not None:
            self.on_pause()

    def abort(self, why: str = "the client disconnected before the request body was complete") -> None:
        with self._cond:
            if not self._ended:
                self._error = why
            self._cond.notify_all()

    # ---- the app's thread ----

    def _cut(self, data: bytes, size: int, line: bool) -> Optional[int]:
        """How many bytes to hand out now, or ``None`` to wait for more."""
        ended = self._ended
        if line:
            nl = data.find(b"\n")
            n = nl + 1 if nl >= 0 else (len(data) if ended else None)
            if size >= 0 and len(data) >= size and (n is None or n > size):
                n = size
            return n
        if size < 0:
            return len(data) if ended else None
        if data:
            return min(size, len(data))
        return 0 if ended else None

    def _take(self, size: int, line: bool) -> bytes:
        while True:
            resume = False
            with self._cond:
                data = b"".join(self._chunks)
                cut = self._cut(data, size, line)
                if cut is not None:
                    rest = data[cut:]
                    self._chunks = [rest] if rest else []
                    self._buffered = len(rest)
                    if self._paused and self._buffered < self.high_water // 2:
                        self._paused, resume = False, True
                elif self._error is not None:
                    raise OSError(self._error)
                elif self._paused:  # the app wants more than is buffered: read again
                    self._chunks = [data] if data else []
                    self._paused, resume = False, True
                else:
                    self._chunks = [data] if data else []
                    self._cond.wait()
                    continue
            if resume and self.on_resume is not None:
                self.on_resume()  # outside the lock: it waits for the loop thread, which feeds under it
            if cut is not None:
                return data[:cut]

    def read(self, size: int = -1) -> bytes:
        if size is None:
            size = -1
        if size == 0:
            return b""
        return self._take(size, False)

    def readline(self, size: int = -1) -> bytes:
        if size is None:
            size = -1
        if size == 0:
            return b""
        return self._take(size, True)

    def readlines(self, hint: int = -1) -> List[bytes]:
        lines, total = [], 0
        while True:
            line = self.readline()
            if not line:
                return lines
            lines.append(line)
            total += len(line)
            if 0 < hint <= total:
                return lines

    def __iter__(self):
        while True:
            line = self.readline()
            if not line:
                return
            yield line
