"""``fastbase [options] module:attr`` (also ``python -m fastbase``)."""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from typing import List, NoReturn, Optional

from . import __version__
from .config import INTERFACES, LIFESPANS, LOG_LEVELS, LOOPS, RELOAD_EXCLUDES, RELOAD_INCLUDES, Config, ConfigError
from .proxy import FAMILIES


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, no usage dump
        self.exit(2, f"fastbase: error: {message} (see fastbase --help)\n")


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}")
    return value


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}")
    return value


def _positive_int(text: str) -> int:
    value = _non_negative_int(text)
    if value == 0:
        raise argparse.ArgumentTypeError("expected a positive integer, got 0")
    return value


def _octal(text: str) -> int:
    try:
        value = int(text, 8)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected octal permission bits such as 660, got {text!r}") from None
    if not 0 <= value <= 0o777:
        raise argparse.ArgumentTypeError(f"expected octal permission bits such as 660, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    defaults = Config.__dataclass_fields__
    d = {name: field.default for name, field in defaults.items()}
    p = _Parser(
        prog="fastbase",
        description="Serve a WSGI or ASGI application over HTTP/1.1.",
        epilog="Example: fastbase --port 8000 mysite.wsgi:application",
    )
    p.add_argument("app", metavar="APP", help='the application, as "module:attribute" (e.g. mysite.wsgi:application)')
    p.add_argument("--host", default=d["host"], metavar="HOST", help="address to bind (default: %(default)s)")
    p.add_argument(
        "--port", type=_non_negative_int, default=d["port"], metavar="PORT", help="port to bind; 0 picks a free one (default: %(default)s)"
    )
    p.add_argument("--uds", metavar="PATH", help="bind a UNIX domain socket instead of TCP (default: none, TCP)")
    p.add_argument(
        "--uds-perms",
        type=_octal,
        metavar="MODE",
        help="permission bits of the --uds socket file, in octal (e.g. 660) (default: as the umask leaves them)",
    )
    p.add_argument(
        "--fd",
        type=_non_negative_int,
        metavar="FD",
        help="serve on an already-listening socket inherited as this file descriptor (default: none)",
    )
    p.add_argument(
        "--interface",
        choices=INTERFACES,
        default=d["interface"],
        metavar="INTERFACE",
        help="application interface, one of %(choices)s; auto picks ASGI for coroutine callables (default: %(default)s)",
    )
    p.add_argument(
        "--threads",
        type=_non_negative_int,
        default=d["threads"],
        metavar="N",
        help="WSGI worker threads; 0 runs the app on the event loop (default: %(default)s)",
    )
    p.add_argument(
        "--loop",
        choices=LOOPS,
        default=d["loop"],
        metavar="LOOP",
        help="event loop, one of %(choices)s; auto uses uvloop when installed (default: %(default)s)",
    )
    p.add_argument(
        "--timeout-keep-alive",
        type=_positive_float,
        default=d["timeout_keep_alive"],
        metavar="SECONDS",
        help="close idle keep-alive connections after this long; keep it above your load balancer's idle timeout (default: %(default)s)",
    )
    p.add_argument(
        "--timeout-request-header",
        type=_positive_float,
        default=d["timeout_request_header"],
        metavar="SECONDS",
        help="the whole request head must arrive within this time, else 408 (default: %(default)s)",
    )
    p.add_argument(
        "--timeout-graceful-shutdown",
        type=_positive_float,
        default=d["timeout_graceful_shutdown"],
        metavar="SECONDS",
        help="time in-flight requests get to finish on shutdown (default: %(default)s)",
    )
    p.add_argument(
        "--limit-request-line",
        type=_non_negative_int,
        default=d["limit_request_line"],
        metavar="BYTES",
        help="longest request line, else 414 (default: %(default)s)",
    )
    p.add_argument(
        "--limit-request-fields",
        type=_non_negative_int,
        default=d["limit_request_fields"],
        metavar="N",
        help="most header fields, else 431 (default: %(default)s)",
    )
    p.add_argument(
        "--limit-request-field-size",
        type=_non_negative_int,
        default=d["limit_request_field_size"],
        metavar="BYTES",
        help="longest header field line, else 431 (default: %(default)s)",
    )
    p.add_argument(
        "--limit-request-body",
        type=_non_negative_int,
        default=d["limit_request_body"],
        metavar="BYTES",
        help="largest request body, else 413 (default: unlimited)",
    )
    p.add_argument(
        "--limit-concurrency",
        type=_non_negative_int,
        default=d["limit_concurrency"],
        metavar="N",
        help="open connections beyond this get 503 (default: unlimited)",
    )
    p.add_argument(
        "--backlog",
        type=_non_negative_int,
        default=d["backlog"],
        metavar="N",
        help="most connections waiting to be accepted (listen backlog) (default: %(default)s)",
    )
    p.add_argument(
        "--access-log", dest="access_log", action="store_true", default=d["access_log"], help="log one line per response (default: off)"
    )
    p.add_argument(
        "--no-access-log", dest="access_log", action="store_false", help="turn the access log off, as it is by default (default: off)"
    )
    p.add_argument(
        "--log-level",
        choices=LOG_LEVELS,
        default=d["log_level"],
        metavar="LEVEL",
        help="least severe server messages shown, one of %(choices)s; debug also shows the traceback of an app that fails to import (default: %(default)s)",
    )
    p.add_argument(
        "--lifespan",
        choices=LIFESPANS,
        default=d["lifespan"],
        metavar="MODE",
        help="ASGI lifespan events, one of %(choices)s; auto goes on without them when the app does not support them (default: %(default)s)",
    )
    p.add_argument(
        "--root-path",
        default=d["root_path"],
        metavar="PATH",
        help="URL path the app is mounted at (SCRIPT_NAME / root_path) (default: none)",
    )
    p.add_argument(
        "--app-dir",
        default=d["app_dir"],
        metavar="DIR",
        help="directory added to sys.path before importing the app (default: current directory)",
    )
    p.add_argument("--factory", action="store_true", help="the app attribute is a factory to call for the app (default: off)")
    p.add_argument(
        "--ws",
        choices=("auto", "none"),
        default=d["ws"],
        metavar="MODE",
        help="WebSocket support for ASGI apps, one of %(choices)s (default: %(default)s)",
    )
    p.add_argument(
        "--ws-max-size",
        type=_positive_int,
        default=d["ws_max_size"],
        metavar="BYTES",
        help="largest WebSocket message, else close 1009 (default: %(default)s)",
    )
    p.add_argument(
        "--ws-ping-interval",
        type=_positive_float,
        default=d["ws_ping_interval"],
        metavar="SECONDS",
        help="seconds between WebSocket keep-alive pings (default: %(default)s)",
    )
    p.add_argument(
        "--ws-ping-timeout",
        type=_positive_float,
        default=d["ws_ping_timeout"],
        metavar="SECONDS",
        help="close a WebSocket whose pong takes longer (default: %(default)s)",
    )
    p.add_argument(
        "--ws-per-message-deflate",
        dest="ws_per_message_deflate",
        action=argparse.BooleanOptionalAction,
        default=d["ws_per_message_deflate"],
        help="negotiate permessage-deflate compression (default: on)",
    )
    p.add_argument(
        "--workers",
        type=_positive_int,
        default=d["workers"],
        metavar="N",
        help="worker processes sharing the listening socket; a supervisor restarts any that dies (default: %(default)s)",
    )
    p.add_argument(
        "--max-requests",
        type=_non_negative_int,
        default=d["max_requests"],
        metavar="N",
        help="replace a worker gracefully after this many requests; 0 never (default: %(default)s)",
    )
    p.add_argument(
        "--max-requests-jitter",
        type=_non_negative_int,
        default=d["max_requests_jitter"],
        metavar="N",
        help="add up to this many to --max-requests per worker, so workers do not restart together (default: %(default)s)",
    )
    p.add_argument(
        "--timeout-worker",
        type=_positive_float,
        default=d["timeout_worker"],
        metavar="SECONDS",
        help="kill and replace a worker whose event loop is blocked this long (default: %(default)s)",
    )
    p.add_argument("--ssl-certfile", metavar="PATH", help="serve HTTPS with this certificate (PEM) (default: none, plain HTTP)")
    p.add_argument(
        "--ssl-keyfile", metavar="PATH", help="the certificate's private key (PEM) (default: none, the key is in --ssl-certfile)"
    )
    p.add_argument("--ssl-keyfile-password", metavar="PASSWORD", help="password of an encrypted key file (default: none)")
    p.add_argument("--ssl-ca-certs", metavar="PATH", help="CA certificates to verify client certificates with (default: none)")
    p.add_argument(
        "--ssl-cert-reqs",
        type=int,
        choices=(0, 1, 2),
        default=d["ssl_cert_reqs"],
        metavar="MODE",
        help="client certificates: 0 none, 1 optional, 2 required (default: %(default)s)",
    )
    p.add_argument("--ssl-ciphers", metavar="CIPHERS", help="OpenSSL cipher list (default: Python's ssl defaults)")
    p.add_argument(
        "--proxy-headers",
        action="store_true",
        help="take the client address, scheme and host from X-Forwarded-* / Forwarded sent by trusted proxies (default: off)",
    )
    p.add_argument(
        "--forwarded-allow-ips",
        metavar="IPS",
        help="trusted proxies for --proxy-headers: IPs, CIDRs or '*', comma-separated (default: $FORWARDED_ALLOW_IPS or 127.0.0.1)",
    )
    p.add_argument("--no-server-header", dest="server_header", action="store_false", help="do not send 'server: fastbase' (default: sent)")
    p.add_argument(
        "--no-gc-freeze",
        dest="gc_freeze",
        action="store_false",
        default=True,
        help="do not gc.freeze() the objects that exist once the app is loaded (default: frozen, so the cyclic GC stops rescanning them)",
    )
    # -- operations: metrics, static files, logging, default headers --
    p.add_argument(
        "--metrics",
        action="store_true",
        help="serve Prometheus metrics at http://METRICS_HOST:METRICS_PORT/metrics (summed over --workers) (default: off)",
    )
    p.add_argument(
        "--metrics-host", metavar="HOST", default=d["metrics_host"], help="address of the metrics endpoint (default: %(default)s)"
    )
    p.add_argument(
        "--metrics-port",
        metavar="PORT",
        type=_non_negative_int,
        default=d["metrics_port"],
        help="port of the metrics endpoint (default: %(default)s)",
    )
    p.add_argument(
        "--static",
        metavar="PREFIX=DIR",
        action="append",
        default=[],
        help="serve the files under DIR at the URL path PREFIX before the app, e.g. /static/=staticfiles; repeatable (default: none)",
    )
    p.add_argument(
        "--log-config",
        metavar="PATH",
        help="logging configuration: .json or .yaml/.yml (dictConfig; YAML needs PyYAML) or .ini/.conf (fileConfig); it replaces fastbase's own set-up (default: none)",
    )
    p.add_argument(
        "--access-log-format",
        metavar="FORMAT",
        help="access-log line in gunicorn's atoms, e.g. '%%(h)s \"%%(r)s\" %%(s)s %%(b)s %%(D)s'; turns the access log on (default: fastbase's own line)",
    )
    p.add_argument(
        "--header",
        metavar="NAME:VALUE",
        dest="headers",
        action="append",
        default=[],
        help="a default response header, added unless the app sets the same name; repeatable (default: none)",
    )
    # --forwarded-headers, --reload*, --pid-file, --env-file
    p.add_argument(
        "--forwarded-headers",
        choices=FAMILIES,
        default=d["forwarded_headers"],
        metavar="FAMILY",
        help="header family --proxy-headers reads: auto (Forwarded when present, else X-Forwarded-*), forwarded or x-forwarded; the other family is ignored (default: %(default)s)",
    )
    p.add_argument(
        "--reload",
        action="store_true",
        help="restart the server when the app's source changes, keeping the listening socket; for development, not with --workers (default: off)",
    )
    p.add_argument(
        "--reload-dir",
        dest="reload_dirs",
        action="append",
        metavar="PATH",
        help="directory --reload watches; repeatable (default: the current directory)",
    )
    p.add_argument(
        "--reload-include",
        dest="reload_includes",
        action="append",
        metavar="PATTERN",
        help=f"glob of files --reload watches; repeatable (default: {' '.join(RELOAD_INCLUDES)})",
    )
    p.add_argument(
        "--reload-exclude",
        dest="reload_excludes",
        action="append",
        metavar="PATTERN",
        help=f"glob of files and directories --reload ignores; repeatable (default: {' '.join(RELOAD_EXCLUDES)})",
    )
    p.add_argument(
        "--pid-file",
        metavar="PATH",
        help="write the server's pid here (with --workers or --reload, the supervising process's), removed on exit (default: none)",
    )
    p.add_argument(
        "--env-file",
        metavar="PATH",
        help="load environment variables from this dotenv file before importing the app; set variables win (default: none)",
    )
    p.add_argument("--version", action="version", version=f"fastbase {__version__} (Python {sys.version.split()[0]})")
    return p


def main(argv: Optional[List[str]] = None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    args = build_parser().parse_args(argv)
    options = vars(args)
    if options["access_log_format"]:
        options["access_log"] = True
    if options["env_file"]:
        from .envfile import EnvFileError, load_env_file

        try:
            load_env_file(options["env_file"])
        except EnvFileError as exc:
            print(f"fastbase: error: {exc}", file=sys.stderr)
            return 2
    try:
        config = Config(**options)
    except ConfigError as exc:
        print(f"fastbase: error: {exc}", file=sys.stderr)
        return 2
    if "FASTBASE_RELOADER_FDS" in os.environ:  # a --reload server process
        from .reload import reloader_child_sockets, serve_reloader_child

        inherited = reloader_child_sockets()
        assert inherited is not None
        return serve_reloader_child(config, inherited)
    from .pidfile import PidFileError, pid_file

    try:
        with pid_file(config.pid_file):
            if config.reload:
                from .reload import Reloader
                from .server import StartupError

                try:
                    return Reloader(config, argv).run()
                except StartupError as exc:
                    print(f"fastbase: error: {exc}", file=sys.stderr)
                    return 1
            return _serve(config)
    except PidFileError as exc:
        print(f"fastbase: error: {exc}", file=sys.stderr)
        return 1


def _serve(config: Config) -> int:
    """Serve until stopped; returns the exit status (errors are one line)."""
    from .asgi import LifespanError
    from .importer import AppLoadError
    from .server import Server, StartupError

    try:
        if config.workers > 1:
            from .supervisor import Supervisor, SupervisorError

            try:
                return Supervisor(config).run()
            except SupervisorError as exc:
                print(f"fastbase: error: {exc}", file=sys.stderr)
                return 1
        Server(config).run()
    except (AppLoadError, StartupError, ConfigError, LifespanError) as exc:
        report_error(exc, config.log_level)
        return 1
    except KeyboardInterrupt:
        pass
    return 0


def report_error(exc: BaseException, log_level: str) -> None:
    """The one-line error; at --log-level debug (or trace), an app that
    failed to load also shows the traceback of what it raised, first."""
    original = getattr(exc, "original", None)
    if original is not None and log_level in ("debug", "trace"):
        traceback.print_exception(type(original), original, original.__traceback__, file=sys.stderr)
    print(f"fastbase: error: {exc}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
