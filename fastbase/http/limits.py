"""Default protocol limits: one named constant each, the status it produces
and why. ``RequestParser`` takes each as a keyword to override per parser."""

from __future__ import annotations

#: 414: RFC 9112 section 3 recommends supporting request lines of at least
#: 8000 octets; 8190 matches nginx/Apache/gunicorn so proxies never disagree.
MAX_REQUEST_LINE = 8190

#: 431: one header field line (name, colon, value); same rationale as above.
MAX_FIELD_SIZE = 8190

#: 431: the whole header section; bounds memory per connection at 64 KiB.
MAX_HEADER_SIZE = 65536

#: 431: number of header fields; bounds per-request work against field floods.
MAX_FIELDS = 100

#: 400: bytes of chunk extensions per chunk (and of one trailer section
#: line, by the field-size rule); extensions are discarded, so anything large
#: is only an attempt to make the server buffer (CVE-2023-39326 class).
MAX_CHUNK_EXTENSIONS = 4096

#: 413: request body size; None means unlimited, since bodies are streamed.
MAX_BODY_SIZE = None

#: 400: hex digits in a chunk size; 16 digits is the whole of a 64-bit size,
#: more is either an overflow attempt or leading-zero padding meant to desync.
MAX_CHUNK_SIZE_DIGITS = 16

#: 400: Content-Length digits; 19 decimal digits always fit in 63 bits.
MAX_CONTENT_LENGTH_DIGITS = 19
