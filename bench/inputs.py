"""Requests every parser in the benchmark reads: the same bytes for all."""

from __future__ import annotations

#: The smallest realistic request: request line, Host, one more field.
SMALL_GET = b"GET / HTTP/1.1\r\nHost: localhost:8000\r\nAccept: */*\r\n\r\n"

#: What Chrome sends for a top-level navigation (exactly 703 bytes).
BROWSER_GET = (
    b"GET /blog/fast-http HTTP/1.1\r\n"
    b"Host: www.example.com\r\n"
    b"Connection: keep-alive\r\n"
    b'sec-ch-ua: "Chromium";v="124", "Google Chrome";v="124", "Not-A.Brand";v="99"\r\n'
    b"sec-ch-ua-mobile: ?0\r\n"
    b'sec-ch-ua-platform: "Windows"\r\n'
    b"Upgrade-Insecure-Requests: 1\r\n"
    b"User-Agent: Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
    b"(KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36\r\n"
    b"Accept: text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,"
    b"image/webp,image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7\r\n"
    b"Sec-Fetch-Site: none\r\n"
    b"Sec-Fetch-Mode: navigate\r\n"
    b"Sec-Fetch-User: ?1\r\n"
    b"Sec-Fetch-Dest: document\r\n"
    b"Accept-Encoding: gzip, deflate, br, zstd\r\n"
    b"Accept-Language: en-US,en;q=0.9\r\n"
    b"Cookie: sessionid=k2j8\r\n"
    b"\r\n"
)
assert len(BROWSER_GET) == 703, len(BROWSER_GET)

#: An API request with 20 header fields.
TWENTY_HEADERS = (
    b"GET /api/v1/orders/12345?expand=items HTTP/1.1\r\n"
    b"Host: api.example.com\r\n"
    b"User-Agent: python-httpx/0.27.0\r\n"
    b"Accept: application/json\r\n"
    b"Accept-Encoding: gzip, deflate\r\n"
    b"Accept-Language: en-US\r\n"
    b"Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiI0MiJ9.c2lnbmF0dXJl\r\n"
    b"Cache-Control: no-cache\r\n"
    b"Connection: keep-alive\r\n"
    b"Content-Type: application/json\r\n"
    b"Cookie: sessionid=k2j8\r\n"
    b"DNT: 1\r\n"
    b'If-None-Match: "33a64df551425fcc55e4d42a148795d9f25f89d4"\r\n'
    b"Origin: https://app.example.com\r\n"
    b"Pragma: no-cache\r\n"
    b"Referer: https://app.example.com/orders\r\n"
    b"X-Forwarded-For: 203.0.113.7, 198.51.100.2\r\n"
    b"X-Forwarded-Proto: https\r\n"
    b"X-Real-IP: 203.0.113.7\r\n"
    b"X-Request-ID: 7f9c2ba4-e88f-4e0b-9a3c-6c1d2e3f4a5b\r\n"
    b"X-Requested-With: XMLHttpRequest\r\n"
    b"\r\n"
)
assert TWENTY_HEADERS.count(b"\r\n") == 22

#: A chunked upload: three chunks, one with an extension, then the last chunk.
CHUNKED_POST = (
    b"POST /upload HTTP/1.1\r\n"
    b"Host: localhost:8000\r\n"
    b"Content-Type: application/octet-stream\r\n"
    b"Transfer-Encoding: chunked\r\n"
    b"\r\n"
    b"10\r\n0123456789abcdef\r\n"
    b"20;name=value\r\n" + b"x" * 32 + b"\r\n"
    b"5\r\nhello\r\n"
    b"0\r\n\r\n"
)

#: Sixteen small GETs in one read (HTTP/1.1 pipelining).
PIPELINED_COUNT = 16
PIPELINED = b"".join(b"GET /static/app-%02d.js HTTP/1.1\r\nHost: localhost:8000\r\nAccept: */*\r\n\r\n" % i for i in range(PIPELINED_COUNT))

#: name -> (bytes, how many requests they hold)
CASES = {
    "small_get": (SMALL_GET, 1),
    "browser_get_703": (BROWSER_GET, 1),
    "twenty_headers": (TWENTY_HEADERS, 1),
    "chunked_post": (CHUNKED_POST, 1),
    "pipelined_16": (PIPELINED, PIPELINED_COUNT),
}

#: A typical application response head for the writer benchmark.
RESPONSE_HEADERS = [
    ("Content-Type", "text/html; charset=utf-8"),
    ("Content-Length", "1534"),
    ("X-Frame-Options", "DENY"),
    ("Vary", "Cookie, Accept-Encoding"),
    ("Referrer-Policy", "same-origin"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
    ("X-Content-Type-Options", "nosniff"),
    ("Set-Cookie", "csrftoken=Zp4qW8s2LmN7xK1vB9tR3yH6; Path=/; SameSite=Lax"),
]
