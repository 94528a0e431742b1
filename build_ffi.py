"""Build script for the _mongoose_cffi extension (cffi out-of-line API mode).

The cdef and the C shim live in real files (mongoose_py/_cdef.h, _shim.c) so
that editors and compilers check them; Mongoose itself is fetched and
hash-checked by vendor/mongoose/fetch.py (never committed).

    python build_ffi.py          # build in place, for development
"""
import os
import sys

from cffi import FFI

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "vendor", "mongoose"))
import fetch  # noqa: E402  (vendor/mongoose/fetch.py)

SRC = fetch.ensure_sources()
if os.path.abspath(SRC).startswith(HERE + os.sep) and os.getcwd() == HERE and __name__ != "__main__":
    SRC = os.path.relpath(SRC, HERE)  # relative: objects land in the build tree, not in ./work/...


def _read(name):
    with open(os.path.join(HERE, "mongoose_py", name)) as f:
        return f.read()


def _read_parts(first, prefix, suffix):
    """``first`` then every ``prefix*suffix`` file, sorted: the shim and its cdef
    are split by area (_shim_ws.c, _cdef_ws.h...) but compiled as ONE unit, so
    that static helpers are shared and cffi sees one declaration list."""
    names = sorted(n for n in os.listdir(os.path.join(HERE, "mongoose_py"))
                   if n.startswith(prefix) and n.endswith(suffix))
    return "\n".join(["/* ==== %s ==== */\n%s" % (n, _read(n)) for n in [first] + names])


DEFINES = [
    ("MG_TLS", "MG_TLS_BUILTIN"),     # Mongoose's own TLS 1.3: no OpenSSL, same on CPython/PyPy
    ("MG_ENABLE_IPV6", "1"),
    ("MG_ENABLE_LINES", "1"),
    # 128 overflows under 2,000 concurrent clients (kernel drops SYNs, ~1 s p99).
    ("MG_SOCK_LISTEN_BACKLOG_SIZE", "4096"),
]
CFLAGS = ["-O3", "-std=gnu99", "-fno-strict-aliasing"]  # -O3 as cymongoose: ~1.45x TLS handshakes
if os.environ.get("MONGOOSE_PY_ASAN") == "1":
    CFLAGS = ["-O1", "-g", "-fsanitize=address", "-fno-omit-frame-pointer", "-std=gnu99"]

ffibuilder = FFI()
ffibuilder.cdef(_read_parts("_cdef.h", "_cdef_", ".h"))
ffibuilder.set_source(
    "mongoose_py._mongoose_cffi",
    _read_parts("_shim.c", "_shim_", ".c"),
    sources=[os.path.join("mongoose_py" if __name__ != "__main__" else os.path.join(HERE, "mongoose_py"),
                          "_mongoose_unit.c")],  # #includes mongoose.c (see that file)
    include_dirs=[SRC],
    define_macros=DEFINES,
    extra_compile_args=CFLAGS,
    extra_link_args=["-fsanitize=address"] if os.environ.get("MONGOOSE_PY_ASAN") == "1" else [],
)

if __name__ == "__main__":
    # In-place development build. Compile in build/inplace so that setuptools
    # does not read ./pyproject.toml, then put the module next to the package.
    import shutil
    tmp = os.path.join(HERE, "build", "inplace")
    os.makedirs(tmp, exist_ok=True)
    os.chdir(tmp)
    so = ffibuilder.compile(tmpdir=tmp, verbose=True)
    dest = os.path.join(HERE, "mongoose_py", os.path.basename(so))
    shutil.copy(so, dest + ".tmp")
    os.replace(dest + ".tmp", dest)  # new inode: processes using the old module keep a valid mapping
    print("built", dest)
