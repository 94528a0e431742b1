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


def test_missing_cffi_is_named_not_reported_as_a_missing_build(tmp_path):
    """A venv without cffi (the checkout's compiled module is there): the error
    says to install cffi, not to rebuild. CPython only (PyPy has cffi built in)."""
    import platform
    import subprocess
    import sys
    if platform.python_implementation() == "PyPy":
        import _cffi_backend  # noqa: F401  (built in: the situation cannot arise)
        return
    import mongoose_py
    # A copy of the package as imported (installed or in-place build), alone in a folder: the
    # folder it came from may also hold cffi.
    package_parent = tmp_path / "pkg"
    shutil.copytree(os.path.dirname(os.path.abspath(mongoose_py.__file__)), str(package_parent / "mongoose_py"),
                    ignore=shutil.ignore_patterns("__pycache__"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    proc = subprocess.run([str(venv / "bin" / "python"), "-c", "import mongoose_py"], cwd=str(tmp_path),
                          env={"PYTHONPATH": str(package_parent), "PATH": os.environ.get("PATH", "")},
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
    err = proc.stderr.decode(errors="replace")
    assert proc.returncode != 0
    assert "needs cffi at run time" in err and "pip install cffi" in err, err
    assert "is missing" not in err.splitlines()[-1], err
