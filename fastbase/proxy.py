"""``--proxy-headers``: a request's client, scheme and server as reported by
the trusted proxies in front of the server.

Pure functions of (socket peer, request headers): no I/O, no server state.
``ProxyHeaders(trusted).resolve(peer, headers, scheme, server)`` returns the
``(client, scheme, server)`` the application should see.

The rules, and why:

* Headers are believed only when the socket peer is trusted
  (``--forwarded-allow-ips``); a UNIX-socket peer is always trusted (only a
  local process can connect, as gunicorn also assumes). From an untrusted
  peer nothing changes: a client cannot name its own address.
* One header family is believed (``--forwarded-headers``). ``auto``:
  ``Forwarded`` (RFC 7239) wins over ``X-Forwarded-*`` when present, even when
  it is malformed (then nothing changes): falling back to the other family
  would let a client choose which one is believed. ``forwarded`` or
  ``x-forwarded``: only that family is read and the other is ignored, so a
  proxy that writes one family need not clear the other.
* Rightmost untrusted hop: every proxy appends the address it received the
  request from, so only the entries right of the last untrusted proxy were
  written by proxies we trust. Walking from the right past trusted addresses,
  the first untrusted one is the client; if all are trusted, the leftmost is.
  A hop that is not an address (garbage, a missing ``for=``) ends the walk:
  what lies left of it cannot be attributed.
* Scheme and host come from the same hop as the client: the proxy that
  received the client's connection wrote them. For ``X-Forwarded-*`` lists that
  are not the same length as ``X-Forwarded-For`` (one proxy sets
  ``X-Forwarded-Proto``, many append ``X-Forwarded-For``), the rightmost value
  is used, which the nearest (trusted) proxy wrote.

What comes out: the client is ``(host, port)``, with port 0 unless the
proxy reported one (``Forwarded: for="[2001:db8::1]:4711"``); ``X-Forwarded-Port``
is the *server* port the client connected to, never the client's. The host is
an IP address, or ``unknown`` / an obfuscated ``_identifier`` when a proxy
reports one of those RFC 7239 section 6 forms. The scheme is ``http`` or
``https``. The server is ``(host, port)`` from ``X-Forwarded-Host`` /
``X-Forwarded-Port`` or ``Forwarded: host=``, the port defaulting to the
scheme's; without them the socket's address stays. Request headers themselves
are never rewritten: the application still sees ``Host`` and the forwarding
headers as sent.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from typing import Iterable, List, Optional, Sequence, Tuple, Union

__all__ = ["ProxyHeaders", "parse_trusted", "parse_forwarded", "parse_node", "FAMILIES"]

#: --forwarded-headers: which header family a trusted proxy's report is read from.
FAMILIES = ("auto", "forwarded", "x-forwarded")

Address = Optional[Tuple[str, int]]
IPAddress = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]
Network = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]

#: Trust decisions remembered per address; bounded because hop addresses in
#: headers are client-controlled.
TRUST_CACHE_SIZE = 1024

SCHEMES = ("http", "https")

# RFC 9110 5.6.2 token, and RFC 7239 section 4 forwarded-pair / quoted-string.
_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_QUOTED = r'"(?:[\t !#-\[\]-~\x80-\xff]|\\[\t !-~\x80-\xff])*"'
_PAIR = re.compile(rf"[ \t]*({_TOKEN})=({_TOKEN}|{_QUOTED})[ \t]*")
_SEPARATOR = re.compile(r"[ \t]*([;,])")
_ESCAPE = re.compile(r"\\(.)")
# RFC 7239 6.3: obfnode / obfport = "_" 1*(ALPHA / DIGIT / "." / "_" / "-")
_OBFUSCATED = re.compile(r"_[A-Za-z0-9._-]+")
_DIGITS = re.compile(r"[0-9]{1,5}")
# A Host value: reg-name or IPv4 (checked loosely: DNS characters) or an
# IP-literal, and an optional port (RFC 9110 7.2, RFC 3986 3.2.2).
_HOST = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._~-]+)(?::([0-9]{1,5}))?")


def parse_trusted(spec: Union[str, Iterable[str]]) -> Tuple[bool, frozenset, Tuple[Network, ...]]:
    """``(trust_all, addresses, networks)`` from "127.0.0.1, 10.0.0.0/8, ::1"
    or ``*``; raises ValueError naming the first bad entry."""
    entries = spec.split(",") if isinstance(spec, str) else list(spec)
    trust_all = False
    addresses = set()
    networks = []
    for raw in entries:
        entry = str(raw).strip()
        if not entry:
            continue
        if entry == "*":
            trust_all = True
        elif "/" in entry:
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                raise ValueError(f"{entry!r} is not a CIDR network") from None
        else:
            try:
                addresses.add(_unmapped(ipaddress.ip_address(entry)))
            except ValueError:
                raise ValueError(f"{entry!r} is not an IP address, a CIDR network or '*'") from None
    return trust_all, frozenset(addresses), tuple(networks)


def _unmapped(ip: IPAddress) -> IPAddress:
    """An IPv4-mapped IPv6 address (a dual-stack socket's view of an IPv4
    peer) as the IPv4 address it is."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def parse_node(text: str) -> Optional[Tuple[str, int, bool]]:
    """An RFC 7239 section 6 node (also the X-Forwarded-For entry forms):
    ``(host, port, is_ip)``; port 0 when absent or obfuscated; None when it
    is not a node. IPv6 comes bracketed ("[::1]:80") or, as X-Forwarded-For
    has it, bare."""
    port_text = ""
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            return None
        name, rest = text[1:end], text[end + 1 :]
        if rest:
            if rest[0] != ":":
                return None
            port_text = rest[1:]
        try:
            ip: Optional[IPAddress] = ipaddress.IPv6Address(name)
        except ValueError:
            return None
    elif text.count(":") > 1:
        try:
            ip = ipaddress.IPv6Address(text)
        except ValueError:
            return None
    else:
        name, _, port_text = text.partition(":")
        if ":" in text and not port_text:
            return None
        if name.lower() == "unknown":
            ip, name = None, "unknown"
        elif _OBFUSCATED.fullmatch(name):
            ip = None
        else:
            try:
                ip = ipaddress.IPv4Address(name)
            except ValueError:
                return None
    port = 0
    if port_text:
        if _DIGITS.fullmatch(port_text):
            port = int(port_text)
            if port > 65535:
                return None
        elif not _OBFUSCATED.fullmatch(port_text):
            return None
    if ip is None:
        return name, port, False
    return str(ip), port, True


def parse_forwarded(text: str) -> Optional[List[dict]]:
    """RFC 7239 section 4: the elements of a ``Forwarded`` value (several
    field lines joined with ","), each a dict of lower-cased parameter names
    to unquoted values; None if the value is malformed anywhere (a quoted
    string cannot be re-synchronised from the right)."""
    elements: List[dict] = []
    current: dict = {}
    pos, end = 0, len(text)
    while True:
        match = _PAIR.match(text, pos)
        if match is not None:
            name = match.group(1).lower()
            value = match.group(2)
            if value[:1] == '"':
                value = _ESCAPE.sub(r"\1", value[1:-1])
            if name in current:
                return None  # "each parameter MUST NOT occur more than once per element"
            current[name] = value
            pos = match.end()
        else:
            while pos < end and text[pos] in " \t":
                pos += 1
        if pos >= end:
            break
        separator = _SEPARATOR.match(text, pos)
        if separator is None:
            return None
        if separator.group(1) == ",":
            if current:  # empty list elements are allowed and skipped
                elements.append(current)
            current = {}
        pos = separator.end()
    if current:
        elements.append(current)
    return elements


def _split_list(values: Sequence[bytes]) -> List[str]:
    """A comma-separated header (all its field lines) as stripped, non-empty items."""
    out = []
    for value in values:
        for item in value.decode("latin-1").split(","):
            item = item.strip()
            if item:
                out.append(item)
    return out


def _scheme(value: Optional[str]) -> Optional[str]:
    if value is None:
        return None
    value = value.strip().lower()
    return value if value in SCHEMES else None


def _host(value: Optional[str]) -> Optional[Tuple[str, int]]:
    """(host, port or 0) from a Host-style value; None if it is not one."""
    if not value:
        return None
    match = _HOST.fullmatch(value.strip())
    if match is None:
        return None
    host, port_text = match.group(1), match.group(2)
    if host.startswith("["):
        host = host[1:-1]  # unbracketed, as a socket address is
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            return None
    port = int(port_text) if port_text else 0
    if port > 65535:
        return None
    return host.lower(), port


def _port(value: Optional[str]) -> int:
    if value is None:
        return 0
    value = value.strip()
    if _DIGITS.fullmatch(value) and 0 < int(value) <= 65535:
        return int(value)
    return 0


class ProxyHeaders:
    """Resolves a request's client/scheme/server behind trusted proxies."""

    def __init__(self, trusted: Union[str, Iterable[str]] = "127.0.0.1", family: str = "auto") -> None:
        if family not in FAMILIES:
            raise ValueError(f"unknown forwarded header family {family!r} (expected one of {', '.join(FAMILIES)})")
        self.trust_all, self.addresses, self.networks = parse_trusted(trusted)
        self.read_forwarded = family != "x-forwarded"
        self.read_x_forwarded = family != "forwarded"
        self.is_trusted = functools.lru_cache(maxsize=TRUST_CACHE_SIZE)(self._is_trusted)

    def _is_trusted(self, host: str) -> bool:
        """Is this address (text, as peername or a header gives it) a trusted proxy?"""
        if self.trust_all:
            return True
        try:
            ip = _unmapped(ipaddress.ip_address(host))
        except ValueError:
            return False
        if ip in self.addresses:
            return True
        return any(ip in network for network in self.networks)

    def resolve(self, peer: Address, headers: Sequence[Tuple[bytes, bytes]], scheme: str, server: Address) -> Tuple[Address, str, Address]:
        unchanged = (peer, scheme, server)
        if peer is not None and not self.is_trusted(peer[0]):
            return unchanged
        forwarded: List[bytes] = []
        xff: List[bytes] = []
        xfp: List[bytes] = []
        xfh: List[bytes] = []
        xfport: List[bytes] = []
        for name, value in headers:
            if name == b"forwarded":
                forwarded.append(value)
            elif name[:12] == b"x-forwarded-":
                suffix = name[12:]
                if suffix == b"for":
                    xff.append(value)
                elif suffix == b"proto":
                    xfp.append(value)
                elif suffix == b"host":
                    xfh.append(value)
                elif suffix == b"port":
                    xfport.append(value)
        if forwarded and self.read_forwarded:
            return self._from_forwarded(forwarded, peer, scheme, server)
        if (xff or xfp or xfh or xfport) and self.read_x_forwarded:
            return self._from_x_forwarded(xff, xfp, xfh, xfport, peer, scheme, server)
        return unchanged

    def _walk(self, nodes: Sequence[Optional[Tuple[str, int, bool]]]) -> Optional[int]:
        """The index of the client's hop (rightmost untrusted; leftmost if all
        are trusted), or None when the rightmost hop is not an address."""
        chosen = None
        for index in range(len(nodes) - 1, -1, -1):
            node = nodes[index]
            if node is None:
                break
            chosen = index
            if not (self.trust_all or (node[2] and self.is_trusted(node[0]))):
                break
        return chosen

    def _from_x_forwarded(
        self,
        xff: List[bytes],
        xfp: List[bytes],
        xfh: List[bytes],
        xfport: List[bytes],
        peer: Address,
        scheme: str,
        server: Address,
    ) -> Tuple[Address, str, Address]:
        nodes = [parse_node(item) for item in _split_list(xff)]
        chosen = self._walk(nodes)
        client = peer
        if chosen is not None:
            node = nodes[chosen]
            assert node is not None
            client = (node[0], node[1])

        def aligned(values: List[bytes]) -> Optional[str]:
            items = _split_list(values)
            if not items:
                return None
            if chosen is not None and len(items) == len(nodes):
                return items[chosen]
            return items[-1]

        new_scheme = _scheme(aligned(xfp)) or scheme
        return client, new_scheme, _server(_host(aligned(xfh)), _port(aligned(xfport)), new_scheme, server)

    def _from_forwarded(self, values: List[bytes], peer: Address, scheme: str, server: Address) -> Tuple[Address, str, Address]:
        elements = parse_forwarded(b",".join(values).decode("latin-1"))
        if not elements:
            return peer, scheme, server
        nodes = [parse_node(element["for"]) if "for" in element else None for element in elements]
        chosen = self._walk(nodes)
        client = peer
        if chosen is not None:
            node = nodes[chosen]
            assert node is not None
            client = (node[0], node[1])
        # The chosen element's proto/host; if it has none, the nearest one
        # to its right (written by a trusted proxy), never one to its left.
        start = chosen if chosen is not None else len(elements) - 1
        new_scheme = None
        host = None
        for element in elements[start:]:
            if new_scheme is None:
                new_scheme = _scheme(element.get("proto"))
            if host is None:
                host = _host(element.get("host"))
        new_scheme = new_scheme or scheme
        return client, new_scheme, _server(host, 0, new_scheme, server)


def _server(host: Optional[Tuple[str, int]], port: int, scheme: str, server: Address) -> Address:
    """The server address from a forwarded host and port: the host's own
    port wins, then the forwarded port, then the scheme's default."""
    if host is not None:
        name, host_port = host
        return name, host_port or port or (443 if scheme == "https" else 80)
    if port and server is not None:
        return server[0], port
    return server
