"""Listening sockets: TCP (IPv4, IPv6, dual-stack), UNIX, inherited fds and
systemd socket activation. Bound here, before any worker starts, so a bind
error is reported once and every worker serves the same sockets."""

from __future__ import annotations

import os
import socket
import stat
import sys
from typing import List

from .config import Config

#: systemd passes activated sockets from this descriptor on (sd_listen_fds(3)).
SD_LISTEN_FDS_START = 3


class BindError(OSError):
    """A socket could not be bound; the message is one line."""


def systemd_sockets() -> List[socket.socket]:
    """Sockets passed by systemd socket activation (LISTEN_FDS/LISTEN_PID),
    or none. The variables are removed so children do not claim them too."""
    count = os.environ.get("LISTEN_FDS")
    pid = os.environ.get("LISTEN_PID")
    if not count or (pid and pid != str(os.getpid())):
        return []
    for name in ("LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES"):
        os.environ.pop(name, None)
    try:
        n = int(count)
    except ValueError:
        raise BindError(f"LISTEN_FDS is not a number: {count!r}") from None
    return [socket.socket(fileno=fd) for fd in range(SD_LISTEN_FDS_START, SD_LISTEN_FDS_START + n)]


def _tcp_socket(family: int, address: tuple, config: Config, reuse_port: bool) -> socket.socket:
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on sockets that
    # say so, and without it pipelined responses wait on Nagle's algorithm.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if sys.platform == "win32":
            # Windows' SO_REUSEADDR lets another process steal the port.
            sock.setsockopt(socket.SOL_SOCKET, getattr(socket, "SO_EXCLUSIVEADDRUSE", socket.SO_REUSEADDR), 1)
        else:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port and hasattr(socket, "SO_REUSEPORT"):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6 and hasattr(socket, "IPPROTO_IPV6"):
            # "::" serves IPv4 too (dual-stack); any other v6 address is v6 only.
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0 if address[0] == "::" else 1)
        sock.bind(address)
        sock.listen(config.backlog)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def _unix_socket(config: Config) -> socket.socket:
    path = config.uds
    assert path is not None
    try:
        if stat.S_ISSOCK(os.stat(path).st_mode):
            os.unlink(path)  # a stale socket from an earlier run
    except FileNotFoundError:
        pass
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(path)
        if config.uds_perms is not None:
            os.chmod(path, config.uds_perms)
        sock.listen(config.backlog)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def bind_sockets(config: Config, reuse_port: bool = False) -> List[socket.socket]:
    """The listening sockets for ``config``; raises BindError with one line."""
    try:
        if config.fd is not None:
            sock = socket.socket(fileno=config.fd)
            sock.setblocking(False)
            return [sock]
        if config.uds:
            return [_unix_socket(config)]
        activated = systemd_sockets()
        if activated:
            for sock in activated:
                sock.setblocking(False)
            return activated
        host = config.host
        infos = socket.getaddrinfo(host or None, config.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        sockets: List[socket.socket] = []
        port = config.port
        seen = set()
        for family, _, _, _, address in infos:
            if family not in (socket.AF_INET, socket.AF_INET6) or (family, address[0]) in seen:
                continue
            seen.add((family, address[0]))
            # With port 0, the later addresses take the port the first one got.
            bind_to: tuple = (address[0], port, *address[2:])
            try:
                sock = _tcp_socket(family, bind_to, config, reuse_port)
            except OSError:
                for opened in sockets:
                    opened.close()
                raise
            sockets.append(sock)
            port = sock.getsockname()[1]
        if not sockets:
            raise OSError(f"no IPv4 or IPv6 address for {host!r}")
        return sockets
    except socket.gaierror as exc:
        raise BindError(f"cannot listen on {config.bind_name}: cannot resolve {config.host!r} ({exc.strerror})") from None
    except BindError:
        raise
    except OSError as exc:
        reason = (exc.strerror or str(exc)).lower()
        raise BindError(f"cannot listen on {config.bind_name}: {reason}") from None


def reuseport_sibling(sock: socket.socket, config: Config) -> "socket.socket | None":
    """A new listening socket bound to ``sock``'s address in its SO_REUSEPORT
    group, or None where there is no such balancing: Linux spreads new
    connections over a group's sockets by a hash of the addresses, so a
    --workers worker with a socket of its own gets its share instead of
    racing the others for one queue. Other systems (macOS, the BSDs) give
    SO_REUSEPORT other meanings; UNIX sockets have no such group; a socket
    not bound with SO_REUSEPORT (--fd, systemd) cannot be joined."""
    if not sys.platform.startswith("linux") or not hasattr(socket, "SO_REUSEPORT"):
        return None
    if sock.family not in (socket.AF_INET, socket.AF_INET6) or sock.type != socket.SOCK_STREAM:
        return None
    if not sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT):
        return None
    return _tcp_socket(sock.family, sock.getsockname(), config, reuse_port=True)


#: Linux's SO_ATTACH_REUSEPORT_CBPF (asm-generic/socket.h), absent from the
#: socket module.
SO_ATTACH_REUSEPORT_CBPF = 51


def steer_reuseport_to_workers(sock: socket.socket, workers: int) -> bool:
    """Attach a classic BPF program to ``sock``'s SO_REUSEPORT group that
    sends each new connection to one of the sockets at indexes 1..workers,
    at random: the workers' own sockets, never the supervisor's (index 0,
    it joined first and keeps that slot). Without it the supervisor's socket
    takes a 1/(workers+1) share that whichever worker wakes first accepts,
    and one worker ends up with two shares. When the program names a slot
    that is empty (a worker being replaced) the kernel falls back to its
    hash over every socket, the supervisor's included, so nothing is lost.
    Returns False where the kernel refuses it (the hash then spreads over
    all sockets)."""
    import ctypes
    import struct

    # ld [SKF_AD_OFF + SKF_AD_RANDOM]; A %= workers; A += 1; ret A
    program = [
        (0x20, 0, 0, (-0x1000 + 56) & 0xFFFFFFFF),
        (0x94, 0, 0, workers),
        (0x04, 0, 0, 1),
        (0x16, 0, 0, 0),
    ]
    code = b"".join(struct.pack("HBBI", *insn) for insn in program)
    buffer = ctypes.create_string_buffer(code, len(code))

    class SockFprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    fprog = SockFprog(len(program), ctypes.addressof(buffer))
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, bytes(fprog))
    except OSError:
        return False
    return True
