"""Build the compiled parser; fall back to the pure-Python twin when it cannot.

``FASTBASE_NO_EXTENSIONS=1`` skips the extension; a missing compiler or a
failed compile installs the package without it (fastbase.parser then uses
the twin), unless ``FASTBASE_REQUIRE_EXTENSIONS=1`` asks for the build to fail.
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
        try:
            super().run()
        except Exception as exc:  # noqa: BLE001 - any toolchain failure
            self._give_up(exc)

    def build_extension(self, ext):
        try:
            super().build_extension(ext)
        except Exception as exc:  # noqa: BLE001
            self._give_up(exc)

    def _give_up(self, exc):
        if REQUIRE_EXTENSIONS:
            raise exc
        sys.stderr.write(
            f"WARNING: fastbase's compiled parser could not be built ({exc}); "
            "installing the pure-Python parser instead.\n"
        )


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
    ext = Extension(
        "fastbase._parser",
        ["fastbase/_parser.pyx"],
        extra_compile_args=[] if sys.platform == "win32" else ["-O2"],
    )
    return cythonize(
        [ext],
        compiler_directives={
            "language_level": 3,
            "boundscheck": False,
            "wraparound": False,
            "cdivision": True,
            "embedsignature": True,
        },
    )


setup(ext_modules=extensions(), cmdclass={"build_ext": OptionalBuildExt})
