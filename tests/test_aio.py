"""AsyncManager: the Manager polled by a thread, bridged to asyncio."""
import asyncio
import urllib.request

import pytest

from mongoose_py import MG_EV_HTTP_MSG, AsyncManager


@pytest.mark.parametrize("native", [False, True])
def test_async_manager_serves_and_schedules(native):
    seen = []

    async def main():
        loop = asyncio.get_running_loop()
        got = loop.create_future()

        def handler(conn, ev, data):
            if ev == MG_EV_HTTP_MSG:
                uri = data.uri  # the view dies with this callback; the lambda runs later
                am.schedule(lambda: got.set_result(uri) if not got.done() else None)
                conn.reply(200, "async " + data.uri)

        async with AsyncManager(handler, poll_interval=50, native=native) as am:
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


@pytest.mark.parametrize("native", [False, True])
def test_async_manager_start_stop_cycles(native):
    async def main():
        am = AsyncManager(native=native)
        for _ in range(3):
            async with am:
                am.listen("tcp://127.0.0.1:0")
            assert not am.running

    asyncio.run(main())


# ---- native mode: the asyncio loop drives the Manager (no poll thread) ----

import http.client  # noqa: E402
import socket  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402

from mongoose_py import Connection  # noqa: E402


def run_native(body, **kw):
    """``await body(am, port_of_listener)`` inside a native AsyncManager."""
    async def main():
        async with AsyncManager(native=True, **kw) as am:
            assert am.native and am.running
            return await asyncio.wait_for(body(am), 60)

    return asyncio.run(main())


def in_thread(fn, *args):
    return asyncio.get_running_loop().run_in_executor(None, fn, *args)


def http_get(port, path, conn=None):
    c = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("GET", path)
    r = c.getresponse()
    return r.read()


class TaskServer(Connection):
    """Answers /slow from a task after an await, everything else at once."""
    order = []

    def on_http_msg(self, msg):
        uri = msg.uri
        if uri == "/slow":
            async def later(conn=self):
                await asyncio.sleep(0.3)
                TaskServer.order.append(uri)
                conn.reply(200, "slow")
            asyncio.ensure_future(later())
        else:
            TaskServer.order.append(uri)
            self.reply(200, "fast " + uri)


def test_native_handlers_start_tasks_and_fast_requests_pass_slow_ones():
    assert threading.active_count() >= 1
    TaskServer.order = []

    async def body(am):
        threads_before = threading.active_count()
        port = am.listen("http://127.0.0.1:0", connection_class=TaskServer).local_addr[1]
        assert threading.active_count() == threads_before  # no poll thread
        slow = in_thread(http_get, port, "/slow")
        await asyncio.sleep(0.05)
        fast = await in_thread(http_get, port, "/fast")
        assert TaskServer.order == ["/fast"]  # answered while /slow's task waits
        assert await slow == b"slow" and fast == b"fast /fast"
        fired = asyncio.get_running_loop().create_future()
        am.timer_add(20, lambda: fired.set_result(True))
        assert await fired

    run_native(body)
    assert TaskServer.order == ["/fast", "/slow"]


class Ok(Connection):
    def on_http_msg(self, msg):
        self.reply(200, "ok")


def test_native_idle_costs_no_cpu_with_keepalive_connections_open():
    async def body(am):
        # (a handler function asks for every event, MG_EV_POLL too: it gets a
        # pass every poll_interval; a Connection subclass gets only its hooks)
        port = am.listen("http://127.0.0.1:0", connection_class=Ok).local_addr[1]
        conns = [http.client.HTTPConnection("127.0.0.1", port, timeout=10) for _ in range(5)]
        for c in conns:
            assert await in_thread(http_get, port, "/", c) == b"ok"
        driver = am._driver
        passes, cpu = driver.passes, time.process_time()
        await asyncio.sleep(2)
        used, idle_passes = time.process_time() - cpu, driver.passes - passes
        for c in conns:
            c.close()
        return used, idle_passes

    used, idle_passes = run_native(body)
    assert idle_passes <= 4, "the loop ran %d passes while idle" % idle_passes
    assert used < 0.25, "idle process used %.3f s CPU in 2 s" % used  # a busy loop burns ~2 s


class BigReply(Connection):
    size = 8 << 20

    def on_http_msg(self, msg):
        async def later(conn=self):
            await asyncio.sleep(0)
            conn.reply(200, bytes(range(256)) * (self.size // 256))
        asyncio.ensure_future(later())


def test_native_large_reply_from_a_coroutine_to_a_slow_reader():
    def slow_reader(port):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        got = bytearray()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
            if len(got) < 1 << 20:
                time.sleep(0.001)  # slow at first: the server's send buffer must wait for EPOLLOUT
            head, sep, rest = bytes(got[:200]).partition(b"\r\n\r\n")
            if sep and len(got) - len(head) - 4 >= BigReply.size:
                break
        s.close()
        return bytes(got)

    async def body(am):
        port = am.listen("http://127.0.0.1:0", connection_class=BigReply).local_addr[1]
        return await in_thread(slow_reader, port)

    data = run_native(body)
    head, _, rest = data.partition(b"\r\n\r\n")
    assert b"Content-Length: %d" % BigReply.size in head
    assert rest == bytes(range(256)) * (BigReply.size // 256)


def test_native_other_threads_call_in_and_paused_reading_does_not_spin():
    got = []

    class Paused(Connection):
        def on_accept(self):
            self.set_read_high_water(4096)

        def on_read(self):
            got.append(self.recv_len)

    async def body(am):
        port = am.listen("tcp://127.0.0.1:0", connection_class=Paused).local_addr[1]
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.sendall(b"x" * 65536)  # more than the high water: the server pauses reading
        for _ in range(200):
            if got and max(got) >= 4096:
                break
            await asyncio.sleep(0.01)
        conn = next(c for c in am.manager.connections if c.is_accepted)
        driver = am._driver
        passes, cpu = driver.passes, time.process_time()
        await asyncio.sleep(1)
        spun = driver.passes - passes
        used = time.process_time() - cpu
        # another thread writes on the connection: the loop must send it at once
        await in_thread(conn.send, b"from a thread")
        s.settimeout(10)
        reply = s.recv(100)
        # and resumes reading: the rest of the 64 KiB arrives
        await in_thread(conn.read)
        await in_thread(conn.resume_reading)
        s.close()
        return spun, used, reply

    spun, used, reply = run_native(body)
    assert reply == b"from a thread"
    assert spun <= 2, "paused connection made the loop spin (%d passes)" % spun
    assert used < 0.25


def test_native_outbound_websocket_client_and_timer_reschedule():
    got = []

    class Echo(Connection):
        def on_http_msg(self, msg):
            self.ws_upgrade(msg)

        def on_ws_msg(self, msg):
            self.ws_send(b"echo:" + msg.data, msg.opcode)

    async def body(am):
        port = am.listen("http://127.0.0.1:0", connection_class=Echo).local_addr[1]
        done = asyncio.get_running_loop().create_future()

        class Client(Connection):
            def on_ws_open(self, msg):
                self.ws_send("hi")

            def on_ws_msg(self, msg):
                got.append(msg.data)
                done.set_result(True)

        am.ws_connect("ws://127.0.0.1:%d/ws" % port, connection_class=Client)
        # a long timer first, then a short one added from a coroutine: the short one must fire first
        order = []
        am.timer_add(400, lambda: order.append("long"))
        await asyncio.sleep(0)
        am.timer_add(20, lambda: order.append("short"))
        await asyncio.wait_for(done, 10)
        for _ in range(100):
            if len(order) == 2:
                break
            await asyncio.sleep(0.02)
        return order

    assert run_native(body) == ["short", "long"]
    assert got == [b"echo:hi"]
