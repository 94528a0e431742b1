"""Build and import: the pinned Mongoose is what got compiled."""
import json
import os

import mongoose_py
from mongoose_py import _ffi


def test_version_is_the_pin():
    pin = json.load(open(os.path.join(os.path.dirname(__file__), "..", "vendor", "mongoose", "pin.json")))
    assert mongoose_py.MONGOOSE_VERSION == pin["version"]


def test_event_constants_come_from_the_header():
    lib = _ffi.lib
    assert mongoose_py.MG_EV_HTTP_MSG == lib.MG_EV_HTTP_MSG
    assert mongoose_py.MG_EV_USER == lib.MG_EV_USER == 23
    values = [getattr(mongoose_py, n) for n in mongoose_py.__all__ if n.startswith("MG_EV_")]
    assert len(values) == len(set(values))


def test_log_level_defaults_to_errors_and_clock_is_set():
    import time
    assert mongoose_py.log_get() == mongoose_py.MG_LL_ERROR
    now_ms = _ffi.lib.mg_boot_timestamp_ms + _ffi.lib.mg_millis()
    assert abs(now_ms / 1000 - time.time()) < 5
