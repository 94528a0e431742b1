#!/usr/bin/env python3
"""Write mongoose_py/_mongoose_cffi.pyi (types of the compiled module) from the cdef.

    python scripts/gen_cffi_pyi.py            # rewrite the stub
    python scripts/gen_cffi_pyi.py --check    # exit 1 if the committed stub is stale (CI)

cffi's own parser reads mongoose_py/_cdef.h then every _cdef_*.h (the order
build_ffi.py compiles them in); Mongoose's sources are not needed. Pointers,
structs and arrays are cffi ``CData``; a pointer to bytes (``char *``,
``void *``, ``uint8_t *``) also accepts ``bytes``, as cffi does.

``CData`` and ``_FFI`` are declared here rather than taken from types-cffi:
its cdata type has no attribute access (struct fields). ``ffi.string`` and
``ffi.unpack`` are typed ``bytes``: this package only uses them on char
arrays (wide chars and other arrays would give ``str``/lists).
"""
import glob
import os
import sys

from cffi import FFI, model

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
STUB = os.path.join(ROOT, "mongoose_py", "_mongoose_cffi.pyi")
BYTE_LIKE = {"char", "signed char", "unsigned char", "uint8_t", "int8_t", "void"}
FLOATS = {"float", "double", "long double"}


PRELUDE = '''
class CData:
    """A cffi cdata object: pointer, struct, array or function (fields are dynamic)."""
    def __getattr__(self, name: str) -> Any: ...
    def __setattr__(self, name: str, value: Any) -> None: ...
    def __getitem__(self, index: Any) -> Any: ...
    def __setitem__(self, index: Any, value: Any) -> None: ...
    def __call__(self, *args: Any) -> Any: ...
    def __bool__(self) -> bool: ...
    def __int__(self) -> int: ...
    def __len__(self) -> int: ...
    def __eq__(self, other: object) -> bool: ...
    def __ne__(self, other: object) -> bool: ...
    def __hash__(self) -> int: ...
    def __add__(self, other: int) -> CData: ...
    def __sub__(self, other: Any) -> Any: ...

class _Buffer:
    def __len__(self) -> int: ...
    def __getitem__(self, index: Union[int, slice]) -> bytes: ...
    def __setitem__(self, index: Union[int, slice], value: bytes) -> None: ...
    def __buffer__(self, flags: int) -> memoryview: ...

class _FFI:
    NULL: CData
    class error(Exception): ...
    def new(self, cdecl: str, init: Any = ...) -> CData: ...
    def cast(self, cdecl: str, value: Any) -> CData: ...
    def string(self, cdata: CData, maxlen: int = ...) -> bytes: ...
    def unpack(self, cdata: CData, length: int) -> bytes: ...
    def buffer(self, cdata: CData, size: int = ...) -> _Buffer: ...
    def from_buffer(self, cdecl_or_buffer: Any, python_buffer: Any = ..., require_writable: bool = ...) -> CData: ...
    def new_handle(self, x: Any) -> CData: ...
    def from_handle(self, x: CData) -> Any: ...
    def addressof(self, cdata: CData, *fields: Union[str, int]) -> CData: ...
    def typeof(self, cdecl: Union[str, CData]) -> Any: ...
    def sizeof(self, cdecl: Union[str, CData]) -> int: ...
    def gc(self, cdata: CData, destructor: Optional[Callable[[CData], Any]], size: int = ...) -> CData: ...
    def def_extern(self, name: str = ..., error: Any = ..., onerror: Optional[Callable[..., Any]] = ...) -> Callable[[Callable[..., Any]], Callable[..., Any]]: ...
'''


def cdef_text():
    folder = os.path.join(ROOT, "mongoose_py")
    names = ["_cdef.h"] + sorted(os.path.basename(p) for p in glob.glob(os.path.join(folder, "_cdef_*.h")))
    parts = []
    for name in names:
        with open(os.path.join(folder, name)) as f:
            parts.append(f.read())
    return "\n".join(parts)


def py_type(ctype, argument):
    if isinstance(ctype, model.VoidType):
        return "None"
    if isinstance(ctype, model.PrimitiveType):
        if ctype.name == "_Bool":
            return "int" if argument else "bool"
        if ctype.name in FLOATS:
            return "float"
        if ctype.name == "char":
            return "bytes"
        return "int"
    if isinstance(ctype, model.EnumType):
        return "int"
    if argument and isinstance(ctype, model.PointerType) and ctype.totype._get_c_name() in BYTE_LIKE:
        return "CData | bytes"
    return "CData"


def generate():
    ffi = FFI()
    ffi.cdef(cdef_text())
    decls = ffi._parser._declarations  # cffi's parse of the cdef
    consts, variables, functions = [], [], []
    for key, (ctype, _quals) in decls.items():
        kind, _, name = key.partition(" ")
        if kind == "macro":
            consts.append("    %s: int" % name)
        elif kind == "constant":
            consts.append("    %s: %s" % (name, py_type(ctype, False)))
        elif kind in ("enum", "anonymous") and isinstance(ctype, model.EnumType):
            consts += ["    %s: int" % e for e in ctype.enumerators]
        elif kind == "variable":
            variables.append("    %s: %s" % (name, py_type(ctype, False)))
        elif kind == "extern_python":
            variables.append("    %s: CData  # extern \"Python\" (the trampoline)" % name)
        elif kind == "function":
            args = ["a%d: %s" % (i, py_type(a, True)) for i, a in enumerate(ctype.args)]
            sig = ", ".join(["self"] + args + (["/"] if args else []))
            functions.append("    def %s(%s) -> %s: ..." % (name, sig, py_type(ctype.result, False)))
    lines = [
        "# Generated by scripts/gen_cffi_pyi.py from mongoose_py/_cdef*.h: do not edit.",
        "from typing import Any, Callable, Optional, Union",
        "",
        PRELUDE,
        "ffi: _FFI",
        "",
        "class _Lib:",
    ] + sorted(consts) + variables + functions + ["", "lib: _Lib", ""]
    return "\n".join(lines)


def main():
    text = generate()
    if "--check" in sys.argv[1:]:
        with open(STUB) as f:
            if f.read() != text:
                sys.exit("%s is stale: run python scripts/gen_cffi_pyi.py" % STUB)
        print("stub current:", STUB)
        return
    with open(STUB, "w") as f:
        f.write(text)
    print("wrote", STUB)


if __name__ == "__main__":
    main()
