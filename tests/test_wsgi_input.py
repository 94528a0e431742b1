"""BodyInput: wsgi.input fed in pieces by the loop thread, read by the app's thread."""
import threading

import pytest
from hypothesis import given, settings, strategies as st

from mongoose_py._wsgi_input import BodyInput


def feed_later(inp, pieces, abort=False):
    def run():
        for i, piece in enumerate(pieces):
            inp.feed(piece, i < len(pieces) - 1 or abort)
        if abort:
            inp.abort()
    t = threading.Thread(target=run)
    t.start()
    return t


@settings(max_examples=60, deadline=None)
@given(st.lists(st.binary(max_size=40), max_size=8), st.lists(st.integers(-1, 50), max_size=12),
       st.booleans())
def test_reads_return_exactly_the_fed_bytes(pieces, sizes, by_line):
    body = b"".join(pieces)
    inp = BodyInput(high_water=16)
    t = feed_later(inp, pieces or [b""])
    got = b""
    for size in sizes:
        part = inp.readline(size) if by_line else inp.read(size)
        if by_line and part:
            assert part.endswith(b"\n") or len(part) == size or got + part == body
        got += part
    got += inp.read()
    t.join(10)
    assert got == body
    assert inp.read() == b"" and inp.readline() == b""


def test_iteration_by_lines_and_pause_resume():
    events = []
    inp = BodyInput(high_water=8, on_pause=lambda: events.append("pause"),
                    on_resume=lambda: events.append("resume"))
    t = feed_later(inp, [b"one\ntw", b"o\nthree", b"\n"])
    t.join(10)
    assert list(inp) == [b"one\n", b"two\n", b"three\n"]
    assert events[:1] == ["pause"] and "resume" in events


def test_truncated_body_raises_instead_of_looking_complete():
    inp = BodyInput()
    t = feed_later(inp, [b"partial"], abort=True)
    with pytest.raises(OSError, match="disconnected"):
        inp.read()
    t.join(10)
