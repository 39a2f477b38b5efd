"""Django's own ``tests/asgi`` suite against fastbase's ASGI handler.

Runs the installed Django's ``tests/runtests.py asgi`` (and the handler tests
in ``handlers``) from that Django version's source distribution with
``django.core.handlers.asgi.ASGIHandler`` and
``django.core.asgi.get_asgi_application`` replaced by
``fastbase.django.ASGIHandler`` and ``fastbase.django.get_asgi_application``
before the tests import them.

    python tests/django_asgi_conformance.py                 # fetches the sdist with pip
    python tests/django_asgi_conformance.py --source DIR    # an unpacked Django sdist
    python tests/django_asgi_conformance.py --django        # the same run on Django's own handler

Exit status: runtests.py's (0 when every test passed).
"""

from __future__ import annotations

import argparse
import glob
import os
import runpy
import subprocess
import sys
import tarfile
import tempfile


def _source(cache: str) -> str:
    import django

    version = django.get_version()
    unpacked = os.path.join(cache, f"django-{version}")
    if not os.path.isdir(os.path.join(unpacked, "tests", "asgi")):
        os.makedirs(cache, exist_ok=True)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "-q",
                "--no-deps",
                "--no-binary",
                ":all:",
                "--ignore-requires-python",
                "-d",
                cache,
                f"django=={version}",
            ],
            check=True,
        )
        archives = glob.glob(os.path.join(cache, f"[dD]jango-{version}.tar.gz"))
        if not archives:
            sys.exit(f"no sdist for Django {version} in {cache}")
        with tarfile.open(archives[0]) as archive:
            members = [m for m in archive.getmembers() if "/tests/" in m.name or m.name.endswith("/tests")]
            try:
                archive.extractall(cache, members=members, filter="data")
            except TypeError:  # Pythons before the tarfile extraction filters
                archive.extractall(cache, members=members)
    return unpacked


def main() -> None:
    parser = argparse.ArgumentParser(description="Django's tests/asgi suite against fastbase's ASGI handler.")
    parser.add_argument("--source", metavar="PATH", help="an unpacked Django sdist of the installed version (default: download it)")
    parser.add_argument(
        "--cache",
        metavar="PATH",
        default=os.path.join(tempfile.gettempdir(), "fastbase-django-sdist"),
        help="where a downloaded sdist is unpacked (default: %(default)s)",
    )
    parser.add_argument("--django", action="store_true", help="run on Django's own handler, for comparison (default: off)")
    parser.add_argument(
        "labels", nargs="*", metavar="LABEL", default=["asgi", "handlers"], help="test labels for runtests.py (default: asgi handlers)"
    )
    args = parser.parse_args()

    tests = os.path.join(args.source or _source(args.cache), "tests")
    if not args.django:
        import django.core.asgi
        import django.core.handlers.asgi

        from fastbase.django import handler

        django.core.handlers.asgi.ASGIHandler = handler.ASGIHandler  # type: ignore[misc]
        django.core.asgi.ASGIHandler = handler.ASGIHandler  # type: ignore[attr-defined]
        django.core.asgi.get_asgi_application = handler.get_asgi_application  # type: ignore[assignment]
        print("fastbase.django.ASGIHandler in place of django.core.handlers.asgi.ASGIHandler", flush=True)
    sys.path.insert(0, tests)
    os.chdir(tests)
    sys.argv = [os.path.join(tests, "runtests.py"), "--parallel", "1", *args.labels]
    runpy.run_path(sys.argv[0], run_name="__main__")


if __name__ == "__main__":
    main()
