"""Build the compiled parser, WSGI environ / ASGI scope builder and WebSocket
frames; fall back to the pure-Python twins when they cannot.

``FASTBASE_NO_EXTENSIONS=1`` skips the extension; a missing compiler or a
failed compile installs the package without it (fastbase.http.parser,
fastbase.environ and fastbase.websocket.frames then use the twins), unless
``FASTBASE_REQUIRE_EXTENSIONS=1`` asks for the build to fail.
"""

import os
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

NO_EXTENSIONS = os.environ.get("FASTBASE_NO_EXTENSIONS") == "1"
REQUIRE_EXTENSIONS = os.environ.get("FASTBASE_REQUIRE_EXTENSIONS") == "1"


class OptionalBuildExt(build_ext):
    """build_ext that degrades to the pure-Python twin instead of failing."""

    def run(self):
        inplace = self.inplace  # setuptools clears it while building
        try:
            super().run()
        except Exception as exc:  # noqa: BLE001 - any toolchain failure
            for ext in self.extensions:
                self._forget(ext, inplace=inplace)
            self._give_up(exc)

    def build_extension(self, ext):
        # Each extension degrades on its own: a failed websocket._frames
        # leaves the compiled http._parser in place, and the reverse.
        try:
            super().build_extension(ext)
        except Exception as exc:  # noqa: BLE001
            self.__dict__.setdefault("failed", set()).add(ext.name)
            self._forget(ext)
            self._give_up(exc, ext.name)

    def copy_extensions_to_source(self):
        # --inplace copies what was built; one missing module must not stop
        # the other from being copied.
        failed = self.__dict__.get("failed", set())
        for ext in self.extensions:
            if ext.name in failed:
                self._forget(ext, inplace=True)
        extensions = self.extensions
        self.extensions = [ext for ext in extensions if ext.name not in failed]
        try:
            super().copy_extensions_to_source()
        finally:
            self.extensions = extensions

    def _forget(self, ext, inplace=False):
        # A module that failed to build must not be replaced by one an earlier
        # build left behind: build/lib* would put it in the wheel, and an old
        # in-place copy would be imported in front of the twin, both compiled
        # from sources that are no longer there.
        built = os.path.join(self.build_lib, self.get_ext_filename(ext.name))
        stale = [built]
        if inplace:
            package = ext.name.rpartition(".")[0]
            package_dir = self.get_finalized_command("build_py").get_package_dir(package)
            stale.append(os.path.join(package_dir, os.path.basename(built)))
        for path in stale:
            if os.path.exists(path):
                os.remove(path)
                sys.stderr.write(f"WARNING: removed {path}, built from older sources.\n")

    def _give_up(self, exc, name="fastbase's compiled modules"):
        if REQUIRE_EXTENSIONS:
            raise exc
        sys.stderr.write(f"WARNING: {name} could not be built ({exc}); installing its pure-Python twin instead.\n")


def extensions():
    if NO_EXTENSIONS:
        return []
    try:
        from Cython.Build import cythonize
    except ImportError:
        if REQUIRE_EXTENSIONS:
            raise
        sys.stderr.write("WARNING: Cython is missing; installing the pure-Python parser.\n")
        return []
    compile_args = [] if sys.platform == "win32" else ["-O2"]
    exts = [
        Extension("fastbase.http._parser", ["fastbase/http/_parser.pyx"], extra_compile_args=compile_args),
        Extension("fastbase.websocket._frames", ["fastbase/websocket/_frames.pyx"], extra_compile_args=compile_args),
        Extension("fastbase.environ._environ", ["fastbase/environ/_environ.pyx"], extra_compile_args=compile_args),
        Extension("fastbase._tally", ["fastbase/_tally.pyx"], extra_compile_args=compile_args),
    ]
    return cythonize(
        exts,
        compiler_directives={
            "language_level": 3,
            "boundscheck": False,
            "wraparound": False,
            "cdivision": True,
            "embedsignature": True,
        },
    )


setup(ext_modules=extensions(), cmdclass={"build_ext": OptionalBuildExt})
