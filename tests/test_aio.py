"""AsyncManager: the Manager polled by a thread, bridged to asyncio."""
import asyncio
import urllib.request

import pytest

from mongoose_py import MG_EV_HTTP_MSG, AsyncManager


def test_async_manager_serves_and_schedules():
    seen = []

    async def main():
        loop = asyncio.get_running_loop()
        got = loop.create_future()

        def handler(conn, ev, data):
            if ev == MG_EV_HTTP_MSG:
                uri = data.uri  # the view dies with this callback; the lambda runs later
                am.schedule(lambda: got.set_result(uri) if not got.done() else None)
                conn.reply(200, "async " + data.uri)

        async with AsyncManager(handler, poll_interval=50) as am:
            assert am.running
            port = am.listen("http://127.0.0.1:0").local_addr[1]
            body = await loop.run_in_executor(
                None, lambda: urllib.request.urlopen("http://127.0.0.1:%d/x" % port, timeout=10).read())
            seen.append(body)
            seen.append(await asyncio.wait_for(got, 10))
            fired = loop.create_future()
            am.timer_add(10, lambda: am.schedule(lambda: fired.set_result(True)))
            assert await asyncio.wait_for(fired, 10)
        with pytest.raises(RuntimeError, match="not started"):
            am.listen("http://127.0.0.1:0")

    asyncio.run(main())
    assert seen == [b"async /x", "/x"]


def test_async_manager_start_stop_cycles():
    async def main():
        am = AsyncManager()
        for _ in range(3):
            async with am:
                am.listen("tcp://127.0.0.1:0")
            assert not am.running

    asyncio.run(main())
