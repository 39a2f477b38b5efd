"""One Config object: every server option, its default, validated once.

Defaults are chosen for production behind a load balancer and for speed:
keep-alive outlives the 60 s idle timeout common to load balancers (so the
balancer, never the server, closes an idle connection and no request races a
close), and the request head must arrive within 20 s (slowloris).
"""

from __future__ import annotations

import dataclasses
import os
import socket
from typing import TYPE_CHECKING, Any, Callable, List, Optional, Union

if TYPE_CHECKING:
    import ssl

from .http import limits

__all__ = ["Config", "ConfigError"]

INTERFACES = ("auto", "wsgi", "asgi")
LOOPS = ("auto", "asyncio", "uvloop")
LIFESPANS = ("auto", "on", "off")
LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")
#: --reload watches these by default (as uvicorn): Python source.
RELOAD_INCLUDES = ("*.py",)
#: --reload never watches these by default: hidden files and directories
#: (.git, .venv), compiled Python, and editors' swap and backup files.
RELOAD_EXCLUDES = (".*", ".py[cod]", ".sw.*", "~*")


class ConfigError(ValueError):
    """A bad option; the message is one line naming the option and the problem."""


@dataclasses.dataclass
class Config:
    app: Union[str, Callable[..., Any], None] = None
    host: str = "127.0.0.1"
    port: int = 8000
    uds: Optional[str] = None
    #: Permission bits for the --uds socket file (e.g. 0o660); None keeps the umask's.
    uds_perms: Optional[int] = None
    fd: Optional[int] = None
    interface: str = "auto"
    #: WSGI worker threads; 0 runs the app on the event loop thread.
    threads: int = 8
    loop: str = "auto"
    #: Idle keep-alive connections close after this many seconds.
    timeout_keep_alive: float = 75.0
    #: The whole request head must arrive within this many seconds (else 408).
    timeout_request_header: float = 20.0
    #: On SIGTERM/SIGINT, in-flight requests get this long to finish.
    timeout_graceful_shutdown: float = 30.0
    limit_request_line: int = limits.MAX_REQUEST_LINE
    limit_request_fields: int = limits.MAX_FIELDS
    limit_request_field_size: int = limits.MAX_FIELD_SIZE
    limit_request_header_size: int = limits.MAX_HEADER_SIZE
    limit_request_body: Optional[int] = limits.MAX_BODY_SIZE
    #: Open connections beyond this get a 503; None is unlimited.
    limit_concurrency: Optional[int] = None
    backlog: int = 2048
    #: One line per response on the "fastbase.access" logger. Off by default,
    #: like gunicorn and granian: logging costs more than serving a request.
    access_log: bool = False
    log_level: str = "info"
    app_dir: Optional[str] = "."
    factory: bool = False
    root_path: str = ""
    lifespan: str = "auto"
    server_header: bool = True
    #: Once the app is loaded (and its lifespan startup done), collect and
    #: gc.freeze() what exists, so the cyclic GC's full collections no longer
    #: walk the app's modules, settings and caches on every pass (fastbase's
    #: command and fastbase.run() turn it on; off for a server embedded in a
    #: process that is not its own, such as a test's live server).
    gc_freeze: bool = False
    #: Believe X-Forwarded-* / Forwarded from the trusted proxies below for
    #: the client address, scheme and server (fastbase.proxy).
    proxy_headers: bool = False
    #: Trusted proxies: IPs, CIDR networks, or "*", comma-separated. None
    #: means $FORWARDED_ALLOW_IPS, else "127.0.0.1" (as uvicorn and gunicorn).
    forwarded_allow_ips: Optional[str] = None
    #: Worker processes serving the same sockets; 1 serves in this process.
    workers: int = 1
    #: A worker that served this many requests (plus up to the jitter) is
    #: replaced gracefully; 0 never recycles.
    max_requests: int = 0
    max_requests_jitter: int = 0
    #: A worker whose event loop stays blocked this long is killed and replaced.
    timeout_worker: float = 30.0
    #: WebSocket support for ASGI apps: "auto" (built in) or "none".
    ws: str = "auto"
    #: 1009 for a message (reassembled, inflated) larger than this.
    ws_max_size: int = 16 * 1024 * 1024
    #: Seconds between keep-alive pings, and to wait for the pong.
    ws_ping_interval: float = 20.0
    ws_ping_timeout: float = 20.0
    #: Negotiate permessage-deflate (RFC 7692) when the client offers it.
    ws_per_message_deflate: bool = True
    ssl_certfile: Optional[str] = None
    ssl_keyfile: Optional[str] = None
    ssl_keyfile_password: Optional[str] = None
    ssl_ca_certs: Optional[str] = None
    #: 0: no client certificate, 1: optional, 2: required (ssl.CERT_*).
    ssl_cert_reqs: int = 0
    ssl_ciphers: Optional[str] = None
    #: runserver compatibility (used by fastbase.django): a WSGI response of
    #: unknown length is close-delimited instead of chunked.
    close_unknown_length: bool = False
    # -- operations (issue 19b): metrics, static files, logging, headers --
    #: Serve Prometheus metrics on metrics_host:metrics_port (fastbase.metrics).
    metrics: bool = False
    metrics_host: str = "127.0.0.1"
    metrics_port: int = 9090
    #: ("/url/prefix/", "/absolute/dir") pairs served before the app
    #: (fastbase.static); "PREFIX=DIR" strings are accepted and converted.
    static: List[Any] = dataclasses.field(default_factory=list)
    #: A logging configuration file: JSON or YAML (dictConfig) or INI (fileConfig).
    log_config: Optional[str] = None
    #: The access-log line in gunicorn's atoms; None keeps fastbase's own line.
    access_log_format: Optional[str] = None
    #: Default response headers, (name, value) pairs or "Name:Value" strings.
    headers: List[Any] = dataclasses.field(default_factory=list)
    # -- --forwarded-headers, --reload*, --pid-file, --env-file ----------------
    #: Which header family --proxy-headers reads: "auto" (Forwarded when a
    #: request has it, else X-Forwarded-*), "forwarded" or "x-forwarded".
    forwarded_headers: str = "auto"
    #: Restart the server process when the app's source changes (fastbase.reload).
    reload: bool = False
    #: Directories watched by --reload (None: the current directory).
    reload_dirs: Optional[List[str]] = None
    #: Glob patterns of watched files (None: RELOAD_INCLUDES).
    reload_includes: Optional[List[str]] = None
    #: Glob patterns of files and directories never watched (None: RELOAD_EXCLUDES).
    reload_excludes: Optional[List[str]] = None
    #: This process's pid (the supervisor's or the reloader's) is written
    #: here at start and removed on a clean exit.
    pid_file: Optional[str] = None
    #: A dotenv file loaded into the environment before the app is imported.
    env_file: Optional[str] = None

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        def fail(message: str) -> None:
            raise ConfigError(message)

        if self.ws not in ("auto", "none"):
            fail(f"--ws must be auto or none, not {self.ws!r}")
        if isinstance(self.ws_max_size, bool) or not isinstance(self.ws_max_size, int) or self.ws_max_size <= 0:
            fail(f"--ws-max-size must be a positive number of bytes, not {self.ws_max_size!r}")
        for name in ("ws_ping_interval", "ws_ping_timeout"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                fail(f"--{name.replace('_', '-')} must be a positive number of seconds, not {value!r}")
        if self.interface not in INTERFACES:
            fail(f"--interface must be one of {', '.join(INTERFACES)}, not {self.interface!r}")
        if self.loop not in LOOPS:
            fail(f"--loop must be one of {', '.join(LOOPS)}, not {self.loop!r}")
        if self.lifespan not in LIFESPANS:
            fail(f"--lifespan must be one of {', '.join(LIFESPANS)}, not {self.lifespan!r}")
        if str(self.log_level).lower() not in LOG_LEVELS:
            fail(f"--log-level must be one of {', '.join(LOG_LEVELS)}, not {self.log_level!r}")
        self.log_level = str(self.log_level).lower()
        if not isinstance(self.port, int) or not 0 <= self.port <= 65535:
            fail(f"--port must be an integer from 0 to 65535, not {self.port!r}")
        if self.uds is not None and self.fd is not None:
            fail("--uds and --fd cannot be used together")
        if self.uds is not None and not hasattr(socket, "AF_UNIX"):
            fail("--uds: this platform has no UNIX domain sockets (Windows); use --host and --port")
        if self.fd is not None and (not isinstance(self.fd, int) or self.fd < 0):
            fail(f"--fd must be a non-negative integer, not {self.fd!r}")
        for name in ("workers", "max_requests", "max_requests_jitter"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < (1 if name == "workers" else 0):
                fail(f"--{name.replace('_', '-')} must be a {'positive' if name == 'workers' else 'non-negative'} integer, not {value!r}")
        if self.uds_perms is not None and (not isinstance(self.uds_perms, int) or not 0 <= self.uds_perms <= 0o777):
            fail(f"--uds-perms must be octal permission bits such as 660, not {self.uds_perms!r}")
        if self.ssl_keyfile and not self.ssl_certfile:
            fail("--ssl-keyfile needs --ssl-certfile")
        for name in ("ssl_certfile", "ssl_keyfile", "ssl_ca_certs"):
            path = getattr(self, name)
            if path is not None and not os.path.isfile(path):
                fail(f"--{name.replace('_', '-')} {path!r} is not a file")
        if self.ssl_cert_reqs not in (0, 1, 2):
            fail(f"--ssl-cert-reqs must be 0 (none), 1 (optional) or 2 (required), not {self.ssl_cert_reqs!r}")
        if self.ssl_cert_reqs and not self.ssl_ca_certs:
            fail("--ssl-cert-reqs needs --ssl-ca-certs to verify client certificates")
        for name in ("threads", "backlog"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 0 or (name == "backlog" and value == 0):
                fail(f"--{name} must be a {'positive' if name == 'backlog' else 'non-negative'} integer, not {value!r}")
        for name in ("timeout_keep_alive", "timeout_request_header", "timeout_graceful_shutdown", "timeout_worker"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                fail(f"--{name.replace('_', '-')} must be a positive number of seconds, not {value!r}")
        for name in (
            "limit_request_line",
            "limit_request_fields",
            "limit_request_field_size",
            "limit_request_header_size",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                fail(f"--{name.replace('_', '-')} must be a positive integer, not {value!r}")
        for name in ("limit_request_body", "limit_concurrency"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
                fail(f"--{name.replace('_', '-')} must be a non-negative integer, not {value!r}")
        if self.root_path and (not self.root_path.startswith("/") or self.root_path.endswith("/")):
            fail(f"--root-path must start with '/' and not end with one, not {self.root_path!r}")
        if self.forwarded_allow_ips is None:
            self.forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
        if self.proxy_headers:
            from .proxy import parse_trusted

            try:
                parse_trusted(str(self.forwarded_allow_ips))
            except ValueError as exc:
                fail(f"--forwarded-allow-ips: {exc}")
        if self.app_dir is not None and not os.path.isdir(self.app_dir):
            fail(f"--app-dir {self.app_dir!r} is not a directory")
        self._validate_operations()
        self._validate_dev_and_process_options(fail)

    def _validate_operations(self) -> None:
        """--metrics*, --static, --log-config, --access-log-format, --header."""
        if not isinstance(self.metrics_port, int) or isinstance(self.metrics_port, bool) or not 0 <= self.metrics_port <= 65535:
            raise ConfigError(f"--metrics-port must be an integer from 0 to 65535, not {self.metrics_port!r}")
        if self.static:
            from .static import parse_mounts

            self.static = parse_mounts(self.static)
        if self.log_config is not None and not os.path.isfile(self.log_config):
            raise ConfigError(f"--log-config {self.log_config!r} is not a file")
        if self.access_log_format is not None:
            from .accesslog import compile_format

            compile_format(self.access_log_format)
        if self.headers:
            from .headers import parse_headers

            self.headers = parse_headers(self.headers)

    def _validate_dev_and_process_options(self, fail: Callable[[str], None]) -> None:
        """--forwarded-headers, --reload*, --pid-file, --env-file."""
        from .proxy import FAMILIES

        if self.forwarded_headers not in FAMILIES:
            fail(f"--forwarded-headers must be one of {', '.join(FAMILIES)}, not {self.forwarded_headers!r}")
        if self.reload:
            if self.workers > 1:
                fail("--reload cannot be used with --workers above 1 (reload restarts one server process)")
            if not isinstance(self.app, str):
                fail("--reload needs the app as an import string (module:attribute) to import it afresh")
        for path in self.reload_dirs or ():
            if not os.path.isdir(path):
                fail(f"--reload-dir {path!r} is not a directory")
        for name in ("reload_includes", "reload_excludes"):
            for pattern in getattr(self, name) or ():
                if not isinstance(pattern, str) or not pattern:
                    fail(f"--{name[:-1].replace('_', '-')} needs a glob pattern such as '*.py', not {pattern!r}")
        if self.pid_file is not None:
            folder = os.path.dirname(os.path.abspath(self.pid_file))
            if os.path.isdir(self.pid_file):
                fail(f"--pid-file {self.pid_file!r} is a directory")
            if not os.path.isdir(folder):
                fail(f"--pid-file {self.pid_file!r}: the directory {folder!r} does not exist")

    def parser_limits(self) -> dict:
        """Keyword arguments for ``RequestParser``."""
        return {
            "max_request_line": self.limit_request_line,
            "max_fields": self.limit_request_fields,
            "max_field_size": self.limit_request_field_size,
            "max_header_size": self.limit_request_header_size,
            "max_body_size": self.limit_request_body,
        }

    @property
    def server_field(self) -> Optional[bytes]:
        """The Server field of every response, the server's own answers
        included (None: --no-server-header)."""
        return b"fastbase" if self.server_header else None

    @property
    def is_ssl(self) -> bool:
        return bool(self.ssl_certfile)

    def ssl_context(self) -> "ssl.SSLContext":
        """The server's TLS context (validated paths; errors are one line)."""
        import ssl

        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        try:
            context.load_cert_chain(self.ssl_certfile or "", self.ssl_keyfile, self.ssl_keyfile_password)
            if self.ssl_ca_certs:
                context.load_verify_locations(self.ssl_ca_certs)
            context.verify_mode = ssl.VerifyMode(self.ssl_cert_reqs)
            if self.ssl_ciphers:
                context.set_ciphers(self.ssl_ciphers)
        except (ssl.SSLError, OSError) as exc:
            raise ConfigError(f"TLS set-up failed: {exc}") from None
        context.set_alpn_protocols(["http/1.1"])
        return context

    @property
    def bind_name(self) -> str:
        if self.uds:
            return f"unix:{self.uds}"
        if self.fd is not None:
            return f"fd://{self.fd}"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"
