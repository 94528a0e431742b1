"""The pinned-Mongoose fetch logic: hashes checked, clear refusals."""
import hashlib
import importlib.util
import json
import os
import shutil

import pytest

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


def load_fetch():
    spec = importlib.util.spec_from_file_location("mg_fetch", os.path.join(ROOT, "vendor", "mongoose", "fetch.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_pin_names_the_issue_hashes():
    pin = json.load(open(os.path.join(ROOT, "vendor", "mongoose", "pin.json")))
    assert pin["version"] == "7.23"
    assert pin["origin"]["package"] == "cymongoose==0.2.5"
    assert pin["files"]["mongoose.c"] == "651d514ee52761c26af774d74e91346bf150c915120d967ec4332a69ea1600f5"
    assert pin["files"]["mongoose.h"] == "0ee23157099964b7ca1c7bf3e02b1b8250cbd7838a6938fed63726e720f70b0b"


def test_mongoose_src_with_the_pinned_files_is_used(tmp_path, monkeypatch):
    fetch = load_fetch()
    here = fetch.ensure_sources()  # the build already fetched them
    for name in ("mongoose.c", "mongoose.h"):
        shutil.copy(os.path.join(here, name), str(tmp_path / name))
    monkeypatch.setenv("MONGOOSE_SRC", str(tmp_path))
    assert fetch.ensure_sources() == str(tmp_path)


def test_mongoose_src_with_other_files_is_refused_with_a_clear_message(tmp_path, monkeypatch):
    fetch = load_fetch()
    (tmp_path / "mongoose.c").write_text("int main(void) { return 0; }\n")
    (tmp_path / "mongoose.h").write_text("/* not mongoose */\n")
    monkeypatch.setenv("MONGOOSE_SRC", str(tmp_path))
    monkeypatch.delenv("MONGOOSE_SRC_UNPINNED", raising=False)
    with pytest.raises(fetch.FetchError) as err:
        fetch.ensure_sources()
    msg = str(err.value)
    assert "does not hold the pinned Mongoose 7.23" in msg
    assert hashlib.sha256(b"int main(void) { return 0; }\n").hexdigest() in msg
    assert "MONGOOSE_SRC_UNPINNED=1" in msg
    monkeypatch.setenv("MONGOOSE_SRC_UNPINNED", "1")
    assert fetch.ensure_sources() == str(tmp_path)
