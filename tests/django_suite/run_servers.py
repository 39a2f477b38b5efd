"""Django's own ``tests/servers`` suite, served by fastbase.

    python tests/django_suite/run_servers.py DJANGO_SOURCE [runtests.py options]

DJANGO_SOURCE is an unpacked Django source distribution of the installed
Django version (it has ``tests/runtests.py``), e.g.::

    pip download --no-deps --no-binary :all: "django==$(python -m django --version)"
    tar xzf django-*.tar.gz
    python tests/django_suite/run_servers.py django-5.2.*/

Before Django's test runner starts, ``basehttp.WSGIServer`` becomes
``fastbase.django.DevServer`` and ``LiveServerThread.server_class``
``fastbase.django.LiveServer``: every live-server test and every test that
builds a ``WSGIServer`` runs against fastbase. The tests run in this one
process (``--parallel 1``: worker processes started by forkserver or spawn
would not see the swap). The exit status is the runner's.

Where fastbase deliberately follows RFC 9112 rather than Django's server,
tests fail; ``KNOWN_DIFFERENCES`` names them and ``--strict`` turns any
other failure (or a known one that passes) into exit status 1, so this
script is also the check that nothing else differs.
"""

from __future__ import annotations

import os
import runpy
import sys
import unittest

#: Django tests that fail because fastbase follows RFC 9112 where Django's
#: server does not (see the README's Django section).
KNOWN_DIFFERENCES = {
    # A streaming response without a length: Django's server closes the
    # connection after it; fastbase sends it chunked and keeps the
    # connection (RFC 9112 7.1, 9.3).
    "servers.tests.LiveServerViews.test_closes_connection_without_content_length": "keep-alive for chunked streaming responses",
    # The client sends "Connection: close": Django's server keeps the
    # connection open anyway; fastbase answers with "Connection: close" and
    # closes (RFC 9112 9.6).
    "servers.tests.LiveServerViews.test_keep_alive_on_connection_with_content_length": "honours a client's Connection: close",
    "servers.tests.LiveServerViews.test_keep_alive_connection_clears_previous_request_data": "honours a client's Connection: close",
    # Django's single-threaded WSGIServer cannot keep a connection open
    # (it would block every other client); fastbase's event loop can, with
    # or without worker threads.
    "servers.tests.SingleThreadLiveServerViews.test_closes_connection_with_content_length": "keep-alive without threads",
}


def patch() -> None:
    from django.core.servers import basehttp
    from django.test import testcases

    from fastbase.django import DevServer, LiveServer

    basehttp.WSGIServer = DevServer  # type: ignore[misc]
    testcases.LiveServerThread.server_class = LiveServer


class _Recorder:
    """Collects the ids of failed and errored tests from the runner's result."""

    failed: set = set()

    @classmethod
    def install(cls) -> None:
        original = unittest.TextTestRunner._makeResult

        def make_result(runner: unittest.TextTestRunner) -> unittest.TestResult:
            result = original(runner)
            add_failure, add_error, add_unexpected_success = result.addFailure, result.addError, result.addUnexpectedSuccess

            def on_failure(test, err):  # type: ignore[no-untyped-def]
                cls.failed.add(test.id())
                add_failure(test, err)

            def on_error(test, err):  # type: ignore[no-untyped-def]
                cls.failed.add(test.id())
                add_error(test, err)

            def on_subtest(test, subtest, err):  # type: ignore[no-untyped-def]
                if err is not None:
                    cls.failed.add(test.id())
                add_subtest(test, subtest, err)

            add_subtest = result.addSubTest
            result.addFailure, result.addError, result.addSubTest = on_failure, on_error, on_subtest
            result.addUnexpectedSuccess = add_unexpected_success
            return result

        unittest.TextTestRunner._makeResult = make_result  # type: ignore[method-assign]


def main(argv: list) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0 if argv else 2
    source, *options = argv
    strict = "--strict" in options
    options = [option for option in options if option != "--strict"]
    tests_dir = os.path.join(os.path.abspath(source), "tests")
    runtests = os.path.join(tests_dir, "runtests.py")
    if not os.path.isfile(runtests):
        print(f"run_servers.py: error: no tests/runtests.py in {source!r}", file=sys.stderr)
        return 2
    patch()
    _Recorder.install()
    sys.path.insert(0, tests_dir)
    sys.argv = [runtests, "servers", "--parallel", "1", *options]
    status = 0
    try:
        runpy.run_path(runtests, run_name="__main__")
    except SystemExit as exc:
        status = exc.code if isinstance(exc.code, int) else 1
    if not strict:
        return status
    failed = _Recorder.failed
    unexpected = sorted(failed - set(KNOWN_DIFFERENCES))
    fixed = sorted(set(KNOWN_DIFFERENCES) - failed)
    print("\nfastbase vs Django's server:", file=sys.stderr)
    for test_id, why in sorted(KNOWN_DIFFERENCES.items()):
        print(f"  {'differs' if test_id in failed else 'PASSES '}  {test_id} ({why})", file=sys.stderr)
    for test_id in unexpected:
        print(f"  UNEXPECTED FAILURE  {test_id}", file=sys.stderr)
    if unexpected or fixed:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
