from setuptools import setup
from setuptools.command.build_ext import build_ext


class build_ext_and_checkout(build_ext):
    """Also leave the built module in the source checkout, so that the
    checkout stays importable (``python -m mongoose_py`` from the repository
    root would otherwise find ./mongoose_py without its compiled module)."""

    def run(self):
        super().run()
        import os
        import shutil
        here = os.path.dirname(os.path.abspath(__file__))
        if not os.path.isdir(os.path.join(here, ".git")):
            return  # an sdist or a copy: nothing to keep current
        for ext in self.extensions:
            built = self.get_ext_fullpath(ext.name)
            dest = os.path.join(here, *ext.name.split(".")[:-1], os.path.basename(built))
            if os.path.exists(built) and os.path.abspath(built) != os.path.abspath(dest):
                shutil.copy(built, dest + ".tmp")
                os.replace(dest + ".tmp", dest)  # new inode: running processes keep theirs


setup(cffi_modules=["build_ffi.py:ffibuilder"], cmdclass={"build_ext": build_ext_and_checkout})
