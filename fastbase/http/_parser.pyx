# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The compiled HTTP/1.1 request parser and response writer.

The fast copy of ``_parser_py.py``, which is the readable spec: same public
API, same events, same errors for the same bytes however they are split into
``feed`` calls. Each protocol rule quotes its RFC 9112 / RFC 9110 clause in
short form; the twin carries the longer quotations.

Where the speed comes from: bytes are scanned with C pointers (SSE2 for field
values and targets); a head that arrives in one piece is parsed straight out
of the caller's bytes without copying; the header list is built in one pass
with no Python call per field; frequent field names, values and methods are
shared bytes objects; facts about the framing fields are gathered during that
pass, so the head is judged without a second loop; status lines and the Date
header are cached.
"""

cimport cython
from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytes cimport (
    PyBytes_AS_STRING,
    PyBytes_Check,
    PyBytes_CheckExact,
    PyBytes_FromStringAndSize,
    PyBytes_GET_SIZE,
)
from cpython.long cimport PyLong_AsLongAndOverflow, PyLong_Check
from cpython.object cimport PyObject
from cpython.ref cimport Py_INCREF, Py_XDECREF
from cpython.unicode cimport (
    PyUnicode_1BYTE_KIND,
    PyUnicode_Check,
    PyUnicode_DATA,
    PyUnicode_GET_LENGTH,
    PyUnicode_KIND,
)
from libc.stdlib cimport free, malloc, realloc
from libc.string cimport memchr, memcmp, memcpy, memmove
from libc.stdint cimport uint64_t

from fastbase.http import limits
from fastbase.http.errors import (
    BadRequest,
    ContentTooLarge,
    HeaderFieldsTooLarge,
    InvalidResponse,
    NotImplementedByServer,
    ProtocolError,
    URITooLong,
    VersionNotSupported,
)
from fastbase.http.status import REASONS
from fastbase.http.wire import (
    CHUNKED,
    CLOSE_DELIMITED,
    CONTINUE_RESPONSE,
    LAST_CHUNK,
    LENGTH,
    NO_BODY,
    ONE_WRITE_LIMIT,
)

__all__ = [
    "RequestParser",
    "Request",
    "EndOfMessage",
    "END",
    "encode_head",
    "encode_chunk",
    "encode_trailers",
    "encode_error",
    "date_header_value",
    "NO_BODY",
    "LENGTH",
    "CHUNKED",
    "CLOSE_DELIMITED",
    "LAST_CHUNK",
    "CONTINUE_RESPONSE",
]


cdef extern from *:
    """
    #include <string.h>
    #include <stdio.h>
    #if defined(__SSE2__) || defined(_M_X64) || (defined(_M_IX86_FP) && _M_IX86_FP >= 2)
    #include <emmintrin.h>
    #define FB_SSE2 1
    #endif
    #if defined(_MSC_VER)
    #include <intrin.h>
    static inline int fb_ctz(unsigned int m) { unsigned long i; _BitScanForward(&i, m); return (int)i; }
    #else
    static inline int fb_ctz(unsigned int m) { return __builtin_ctz(m); }
    #endif

    /* Character classes, filled once by fb_init_tables(). */
    static unsigned char fb_tchar[256];      /* RFC 9110 5.6.2 tchar */
    static unsigned char fb_lower[256];      /* ASCII lower-casing, like bytes.lower() */
    static unsigned char fb_value_stop[256]; /* CTLs and DEL: end a run of field-value bytes */
    static unsigned char fb_target_ok[256];  /* request-target bytes */
    static unsigned char fb_hexval[256];     /* 0-15, or 0xFF for a non-HEXDIG */
    static unsigned char fb_reg_name[256];   /* RFC 3986 reg-name bytes */
    static unsigned char fb_ip_literal[256]; /* bytes inside [ ] */
    static unsigned char fb_resp_bad[256];   /* CR, LF, NUL: never in a response field */

    static void fb_init_tables(void) {
        static const char tspecials[] = "!#$%&'*+-.^_`|~";
        static const char reg_extra[] = "-._~%!$&'()*+,;=";
        int c;
        for (c = 0; c < 256; c++) {
            int digit = c >= '0' && c <= '9';
            int alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
            int hex = digit || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
            fb_tchar[c] = digit || alpha || (c != 0 && strchr(tspecials, c) != NULL);
            fb_lower[c] = (unsigned char)((c >= 'A' && c <= 'Z') ? c + 32 : c);
            fb_value_stop[c] = c < 0x20 || c == 0x7F;
            fb_target_ok[c] = (c > 0x20 && c < 0x7F && c != '#') || c >= 0x80;
            fb_hexval[c] = (unsigned char)(digit ? c - '0' : (hex ? (c | 0x20) - 'a' + 10 : 0xFF));
            fb_reg_name[c] = digit || alpha || (c != 0 && strchr(reg_extra, c) != NULL);
            fb_ip_literal[c] = hex || c == ':' || c == '.';
            fb_resp_bad[c] = c == 0 || c == '\\r' || c == '\\n';
        }
    }

    /* The first byte in [p, end) that is a CTL or DEL (HTAB included: the
       caller steps over it), or end. */
    static inline const unsigned char *fb_scan_value(const unsigned char *p, const unsigned char *end) {
    #ifdef FB_SSE2
        const __m128i ctl = _mm_set1_epi8(0x1F);
        const __m128i del = _mm_set1_epi8(0x7F);
        while (end - p >= 16) {
            __m128i v = _mm_loadu_si128((const __m128i *)p);
            __m128i bad = _mm_or_si128(_mm_cmpeq_epi8(_mm_max_epu8(v, ctl), ctl), _mm_cmpeq_epi8(v, del));
            int m = _mm_movemask_epi8(bad);
            if (m) return p + fb_ctz((unsigned int)m);
            p += 16;
        }
    #endif
        while (p < end && !fb_value_stop[*p]) p++;
        return p;
    }

    /* The first byte in [p, end) that is not a token byte. 16 bytes at a
       time for the usual name bytes (letters, digits, "-"); the rarer tchars
       ("!#$%&'*+.^_`|~") are taken one by one. */
    static inline const unsigned char *fb_scan_token(const unsigned char *p, const unsigned char *end) {
    #ifdef FB_SSE2
        const __m128i case_bit = _mm_set1_epi8(0x20);
        const __m128i below_a = _mm_set1_epi8(0x60), above_z = _mm_set1_epi8(0x7B);
        const __m128i below_0 = _mm_set1_epi8(0x2F), above_9 = _mm_set1_epi8(0x3A);
        const __m128i dash = _mm_set1_epi8(0x2D);
        for (;;) {
            while (end - p >= 16) {
                __m128i v = _mm_loadu_si128((const __m128i *)p);
                __m128i l = _mm_or_si128(v, case_bit);
                __m128i ok = _mm_or_si128(
                    _mm_and_si128(_mm_cmpgt_epi8(l, below_a), _mm_cmpgt_epi8(above_z, l)),
                    _mm_or_si128(_mm_and_si128(_mm_cmpgt_epi8(v, below_0), _mm_cmpgt_epi8(above_9, v)),
                                 _mm_cmpeq_epi8(v, dash)));
                int m = _mm_movemask_epi8(ok) ^ 0xFFFF;
                if (m) { p += fb_ctz((unsigned int)m); break; }
                p += 16;
            }
            if (end - p < 16 || !fb_tchar[*p]) break;
            p++; /* a rarer tchar: go on */
        }
    #endif
        while (p < end && fb_tchar[*p]) p++;
        return p;
    }

    /* The first byte in [p, end) that cannot be in a request-target (SP,
       CTL, DEL, "#"), or end. */
    static inline const unsigned char *fb_scan_target(const unsigned char *p, const unsigned char *end) {
    #ifdef FB_SSE2
        const __m128i sp = _mm_set1_epi8(0x20);
        const __m128i del = _mm_set1_epi8(0x7F);
        const __m128i hash = _mm_set1_epi8(0x23);
        while (end - p >= 16) {
            __m128i v = _mm_loadu_si128((const __m128i *)p);
            __m128i bad = _mm_or_si128(_mm_cmpeq_epi8(_mm_max_epu8(v, sp), sp),
                                       _mm_or_si128(_mm_cmpeq_epi8(v, del), _mm_cmpeq_epi8(v, hash)));
            int m = _mm_movemask_epi8(bad);
            if (m) return p + fb_ctz((unsigned int)m);
            p += 16;
        }
    #endif
        while (p < end && fb_target_ok[*p]) p++;
        return p;
    }

    /* RFC 9110 7.2 / RFC 3986 3.2: uri-host [ ":" port ], no userinfo. */
    static int fb_valid_authority(const unsigned char *v, Py_ssize_t n) {
        const unsigned char *end = v + n, *rest, *p;
        if (n == 0) return 0;
        if (v[0] == '[') {
            const unsigned char *close = (const unsigned char *)memchr(v, ']', (size_t)n);
            if (close == NULL || close - v < 2) return 0;
            for (p = v + 1; p < close; p++) if (!fb_ip_literal[*p]) return 0;
            rest = close + 1;
        } else {
            const unsigned char *colon = (const unsigned char *)memchr(v, ':', (size_t)n);
            const unsigned char *host_end = colon ? colon : end;
            if (host_end == v) return 0;
            for (p = v; p < host_end; p++) if (!fb_reg_name[*p]) return 0;
            rest = host_end;
        }
        if (rest < end) {
            if (*rest != ':' || end - (rest + 1) > 5) return 0;
            for (p = rest + 1; p < end; p++) if (*p < '0' || *p > '9') return 0;
        }
        return 1;
    }

    static inline int fb_field_ok(unsigned char c) { return c == 0x09 || !fb_value_stop[c]; }

    /* RFC 9112 7.1.1: chunk-ext = *( BWS ";" BWS chunk-ext-name
       [ BWS "=" BWS chunk-ext-val ] ), chunk-ext-val = token / quoted-string. */
    static int fb_chunk_ext_ok(const unsigned char *line, Py_ssize_t i, Py_ssize_t size) {
        Py_ssize_t start;
        while (i < size) {
            while (i < size && (line[i] == ' ' || line[i] == '\\t')) i++;
            if (i >= size || line[i] != ';') return 0;
            i++;
            while (i < size && (line[i] == ' ' || line[i] == '\\t')) i++;
            start = i;
            while (i < size && fb_tchar[line[i]]) i++;
            if (i == start) return 0;
            while (i < size && (line[i] == ' ' || line[i] == '\\t')) i++;
            if (i < size && line[i] == '=') {
                i++;
                while (i < size && (line[i] == ' ' || line[i] == '\\t')) i++;
                if (i < size && line[i] == '"') {
                    i++;
                    for (;;) {
                        unsigned char c;
                        if (i >= size) return 0;
                        c = line[i];
                        if (c == '"') { i++; break; }
                        if (c == '\\\\') {
                            /* quoted-pair = "\\" ( HTAB / SP / VCHAR / obs-text ) */
                            i++;
                            if (i >= size || !fb_field_ok(line[i])) return 0;
                        } else if (!fb_field_ok(c)) {
                            return 0;
                        }
                        i++;
                    }
                } else {
                    start = i;
                    while (i < size && fb_tchar[line[i]]) i++;
                    if (i == start) return 0;
                }
            }
        }
        return 1;
    }

    /* Seconds since the epoch, as time() -- but read from the same clock
       as Python's time.time(): glibc's time() reads a coarse clock that lags
       it by up to a tick, so the Date second could differ from the twin's. */
    #include <time.h>
    static inline long long fb_now(void) {
    #if defined(CLOCK_REALTIME) && !defined(_WIN32)
        struct timespec ts;
        if (clock_gettime(CLOCK_REALTIME, &ts) == 0) return (long long)ts.tv_sec;
    #endif
        return (long long)time(NULL);
    }

    /* RFC 9110 5.6.7: IMF-fixdate, e.g. "Sun, 06 Nov 1994 08:49:37 GMT" (29 bytes). */
    static void fb_format_date(long long t, char *out) {
        static const char *wdays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
        static const char *months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
        long long days = t / 86400, rem = t % 86400, z, era, doe, yoe, y, doy, mp, d, m;
        int wday;
        if (rem < 0) { rem += 86400; days -= 1; }
        wday = (int)((days % 7 + 11) % 7); /* 1970-01-01 was a Thursday */
        /* days -> civil date (proleptic Gregorian) */
        z = days + 719468;
        era = (z >= 0 ? z : z - 146096) / 146097;
        doe = z - era * 146097;
        yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
        y = yoe + era * 400;
        doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        mp = (5 * doy + 2) / 153;
        d = doy - (153 * mp + 2) / 5 + 1;
        m = mp < 10 ? mp + 3 : mp - 9;
        y += (m <= 2);
        snprintf(out, 30, "%s, %02d %s %04d %02d:%02d:%02d GMT", wdays[wday], (int)d, months[m - 1],
                 (int)y, (int)(rem / 3600), (int)(rem / 60 % 60), (int)(rem % 60));
    }
    """
    unsigned char fb_tchar[256]
    unsigned char fb_lower[256]
    unsigned char fb_value_stop[256]
    unsigned char fb_target_ok[256]
    unsigned char fb_hexval[256]
    unsigned char fb_resp_bad[256]
    void fb_init_tables() noexcept nogil
    const unsigned char* fb_scan_value(const unsigned char* p, const unsigned char* end) noexcept nogil
    const unsigned char* fb_scan_target(const unsigned char* p, const unsigned char* end) noexcept nogil
    const unsigned char* fb_scan_token(const unsigned char* p, const unsigned char* end) noexcept nogil
    bint fb_valid_authority(const unsigned char* v, Py_ssize_t n) noexcept nogil
    bint fb_field_ok(unsigned char c) noexcept nogil
    bint fb_chunk_ext_ok(const unsigned char* line, Py_ssize_t i, Py_ssize_t size) noexcept nogil
    void fb_format_date(long long t, char* out) noexcept nogil
    long long fb_now() noexcept nogil


fb_init_tables()

ctypedef const unsigned char* cptr

cdef enum:
    CR = 13
    LF = 10
    SP = 32
    HTAB = 9

# --- parser states (the twin's numbering) -------------------------------------
cdef enum:
    S_REQUEST_LINE = 0
    S_HEADERS = 1
    S_BODY = 2
    S_CHUNK_SIZE = 3
    S_CHUNK_DATA = 4
    S_CHUNK_CRLF = 5
    S_TRAILERS = 6
    S_PAUSED = 7  # after an Upgrade request: bytes are held for the next protocol
    S_CLOSED = 8  # after a request that ends the connection: bytes are ignored
    S_ERROR = 9

# Which limit an over-long line broke (see _take_line).
cdef enum:
    LINE_REQUEST = 0
    LINE_FIELD = 1
    LINE_CHUNK = 2

# Fields whose value decides framing or connection handling.
cdef enum:
    F_OTHER = 0
    F_HOST = 1
    F_CONTENT_LENGTH = 2
    F_TRANSFER_ENCODING = 3
    F_CONNECTION = 4
    F_UPGRADE = 5
    F_EXPECT = 6

cdef long long INT64_MAX = 0x7FFFFFFFFFFFFFFF
cdef Py_ssize_t MAX_CHUNK_SIZE_DIGITS = limits.MAX_CHUNK_SIZE_DIGITS
cdef Py_ssize_t MAX_CONTENT_LENGTH_DIGITS = limits.MAX_CONTENT_LENGTH_DIGITS

cdef bytes _EMPTY = b""
cdef str _V10 = "1.0"
cdef str _V11 = "1.1"
cdef bytes _GET = b"GET"
cdef bytes _PUT = b"PUT"
cdef bytes _POST = b"POST"
cdef bytes _HEAD = b"HEAD"
cdef bytes _PATCH = b"PATCH"
cdef bytes _TRACE = b"TRACE"
cdef bytes _DELETE = b"DELETE"
cdef bytes _OPTIONS = b"OPTIONS"
cdef bytes _CONNECT = b"CONNECT"
cdef bytes _SLASH = b"/"


# --- shared bytes for frequent field names and values -------------------------

cdef enum:
    NAME_SLOTS = 512
    VALUE_SLOTS = 512
    MAX_SHARED_VALUE = 64

cdef PyObject* _name_obj[NAME_SLOTS]
cdef const char* _name_str[NAME_SLOTS]
cdef Py_ssize_t _name_len[NAME_SLOTS]
cdef int _name_kind[NAME_SLOTS]
cdef PyObject* _value_obj[VALUE_SLOTS]
cdef const char* _value_str[VALUE_SLOTS]
cdef Py_ssize_t _value_len[VALUE_SLOTS]
cdef list _shared = []  # owns the objects the tables point to

# (name, value) tuples built from a shared name and a shared value are shared
# too: keyed by the two slots, the latest pair wins a colliding slot.
cdef enum:
    PAIR_SLOTS = 1024
cdef PyObject* _pair_obj[PAIR_SLOTS]
cdef int _pair_name[PAIR_SLOTS]
cdef int _pair_value[PAIR_SLOTS]

_COMMON_NAMES = {
    b"host": F_HOST,
    b"content-length": F_CONTENT_LENGTH,
    b"transfer-encoding": F_TRANSFER_ENCODING,
    b"connection": F_CONNECTION,
    b"upgrade": F_UPGRADE,
    b"expect": F_EXPECT,
}
for _n in (
    b"accept", b"accept-charset", b"accept-encoding", b"accept-language", b"accept-ranges",
    b"access-control-request-headers", b"access-control-request-method", b"authorization",
    b"cache-control", b"content-disposition", b"content-encoding", b"content-language",
    b"content-md5", b"content-range", b"content-type", b"cookie", b"date", b"dnt",
    b"early-data", b"forwarded", b"from", b"http2-settings", b"if-match",
    b"if-modified-since", b"if-none-match", b"if-range", b"if-unmodified-since",
    b"keep-alive", b"last-event-id", b"max-forwards", b"origin", b"pragma", b"priority",
    b"proxy-authorization", b"proxy-connection", b"purpose", b"range", b"referer",
    b"sec-ch-ua", b"sec-ch-ua-arch", b"sec-ch-ua-bitness", b"sec-ch-ua-full-version-list",
    b"sec-ch-ua-mobile", b"sec-ch-ua-model", b"sec-ch-ua-platform",
    b"sec-ch-ua-platform-version", b"sec-fetch-dest", b"sec-fetch-mode", b"sec-fetch-site",
    b"sec-fetch-user", b"sec-gpc", b"sec-purpose", b"sec-websocket-extensions",
    b"sec-websocket-key", b"sec-websocket-protocol", b"sec-websocket-version", b"te",
    b"trailer", b"upgrade-insecure-requests", b"user-agent", b"via", b"warning",
    b"x-amzn-trace-id", b"x-csrftoken", b"x-csrf-token", b"x-forwarded-for",
    b"x-forwarded-host", b"x-forwarded-port", b"x-forwarded-proto", b"x-real-ip",
    b"x-request-id", b"x-requested-with",
):
    _COMMON_NAMES.setdefault(_n, F_OTHER)

_COMMON_VALUES = (
    b"keep-alive", b"close", b"Keep-Alive", b"Close", b"upgrade", b"Upgrade", b"websocket",
    b"100-continue", b"chunked", b"trailers", b"gzip", b"deflate", b"br", b"identity",
    b"gzip, deflate", b"gzip, deflate, br", b"gzip, deflate, br, zstd", b"gzip,deflate",
    b"*/*", b"?0", b"?1", b"0", b"1", b"13", b"document", b"navigate", b"none",
    b"same-origin", b"same-site", b"cross-site", b"cors", b"no-cors", b"empty", b"image",
    b"script", b"style", b"font", b"iframe", b"manifest", b"worker", b"websocket",
    b"no-cache", b"max-age=0", b"prefetch", b"en-US,en;q=0.9", b"en-US,en;q=0.5",
    b"en-GB,en;q=0.9", b"en-US", b"en", b'"Windows"', b'"macOS"', b'"Linux"', b'"Android"',
    b'"Chrome OS"', b'"x86"', b'"arm"', b'"64"', b'""', b"u=0, i", b"u=1, i", b"u=0", b"u=1",
    b"u=2", b"u=3", b"u=4", b"u=5", b"i", b"text/html", b"text/plain", b"application/json",
    b"application/x-www-form-urlencoded", b"application/octet-stream", b"XMLHttpRequest",
    b"http", b"https", b"localhost", b"127.0.0.1", b"image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8",
    b"text/css,*/*;q=0.1", b"application/json, text/plain, */*",
)


cdef inline unsigned int _name_hash(cptr p, Py_ssize_t n) noexcept nogil:
    return (<unsigned int>n * 31u + fb_lower[p[0]] * 7u + fb_lower[p[n - 1]] * 3u
            + fb_lower[p[n >> 1]] + fb_lower[p[(n * 3) >> 2]] * 5u) & (NAME_SLOTS - 1)


cdef inline unsigned int _value_hash(cptr p, Py_ssize_t n) noexcept nogil:
    return (<unsigned int>n * 131u + p[0] * 7u + p[n - 1] * 3u + p[n >> 1]
            + p[(n * 3) >> 2] * 5u) & (VALUE_SLOTS - 1)


cdef void _share_name(bytes name, int kind):
    assert all(c in b"abcdefghijklmnopqrstuvwxyz0123456789-" for c in name)
    cdef cptr p = <cptr>PyBytes_AS_STRING(name)
    cdef Py_ssize_t n = len(name)
    cdef unsigned int h = _name_hash(p, n)
    while _name_obj[h] != NULL:
        h = (h + 1) & (NAME_SLOTS - 1)
    _shared.append(name)
    _name_obj[h] = <PyObject*>name
    _name_str[h] = <const char*>p
    _name_len[h] = n
    _name_kind[h] = kind


cdef void _share_value(bytes value):
    cdef cptr p = <cptr>PyBytes_AS_STRING(value)
    cdef Py_ssize_t n = len(value)
    cdef unsigned int h = _value_hash(p, n)
    while _value_obj[h] != NULL:
        if _value_len[h] == n and memcmp(_value_str[h], p, n) == 0:
            return
        h = (h + 1) & (VALUE_SLOTS - 1)
    _shared.append(value)
    _value_obj[h] = <PyObject*>value
    _value_str[h] = <const char*>p
    _value_len[h] = n


for _n, _k in _COMMON_NAMES.items():
    _share_name(_n, _k)
for _n in _COMMON_VALUES:
    _share_value(_n)
del _n, _k, _COMMON_NAMES, _COMMON_VALUES


cdef inline bint _ieq(cptr p, const char* lower, Py_ssize_t n) noexcept nogil:
    """p[:n] lower-cased equals ``lower`` (already lower case)."""
    cdef Py_ssize_t i
    for i in range(n):
        if fb_lower[p[i]] != <unsigned char>lower[i]:
            return False
    return True


cdef inline bint _token_ieq(cptr p, const char* lower, Py_ssize_t n) noexcept nogil:
    """Token p[:n] lower-cased equals ``lower`` (made of a-z, 0-9 and "-").

    For those bytes, OR-ing 0x20 into a token byte gives the shared name's
    byte exactly when the lower-cased byte equals it, so 8 bytes compare at once.
    """
    cdef uint64_t a, b
    while n >= 8:
        memcpy(&a, p, 8)
        memcpy(&b, lower, 8)
        if (a | 0x2020202020202020ULL) != b:
            return False
        p += 8
        lower += 8
        n -= 8
    while n > 0:
        if (p[0] | 0x20) != <unsigned char>lower[0]:
            return False
        p += 1
        lower += 1
        n -= 1
    return True


cdef inline bint _all_tchar(cptr p, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i
    if n == 0:
        return False
    for i in range(n):
        if not fb_tchar[p[i]]:
            return False
    return True


cdef inline int _value_slot(cptr p, Py_ssize_t n) noexcept nogil:
    """The shared-value slot holding p[:n], or -1."""
    cdef unsigned int h
    if n == 0 or n > MAX_SHARED_VALUE:
        return -1
    h = _value_hash(p, n)
    while _value_obj[h] != NULL:
        if _value_len[h] == n and memcmp(_value_str[h], p, n) == 0:
            return <int>h
        h = (h + 1) & (VALUE_SLOTS - 1)
    return -1


cdef inline int _name_slot(cptr p, Py_ssize_t n) noexcept nogil:
    """The shared-name slot holding p[:n] lower-cased, or -1 (p is a token)."""
    cdef unsigned int h = _name_hash(p, n)
    while _name_obj[h] != NULL:
        if _name_len[h] == n and _token_ieq(p, _name_str[h], n):
            return <int>h
        h = (h + 1) & (NAME_SLOTS - 1)
    return -1


cdef inline object _field(int name_slot, cptr name, Py_ssize_t nlen, cptr value, Py_ssize_t vlen):
    """The (lower-cased name, value) tuple; shared when both parts are."""
    cdef int value_slot
    cdef unsigned int key
    cdef object name_obj, value_obj
    cdef tuple pair
    cdef char* dst
    cdef Py_ssize_t i
    if name_slot >= 0:
        value_slot = _value_slot(value, vlen)
        if value_slot >= 0:
            key = (<unsigned int>name_slot * 61u + <unsigned int>value_slot) & (PAIR_SLOTS - 1)
            if _pair_name[key] == name_slot + 1 and _pair_value[key] == value_slot + 1:
                return <object>_pair_obj[key]
            pair = (<object>_name_obj[name_slot], <object>_value_obj[value_slot])
            Py_XDECREF(_pair_obj[key])
            Py_INCREF(pair)
            _pair_obj[key] = <PyObject*>pair
            _pair_name[key] = name_slot + 1
            _pair_value[key] = value_slot + 1
            return pair
        name_obj = <object>_name_obj[name_slot]
    else:
        name_obj = PyBytes_FromStringAndSize(NULL, nlen)
        dst = PyBytes_AS_STRING(name_obj)
        for i in range(nlen):
            dst[i] = <char>fb_lower[name[i]]
        value_slot = _value_slot(value, vlen)
    if value_slot >= 0:
        value_obj = <object>_value_obj[value_slot]
    elif vlen == 0:
        value_obj = _EMPTY
    else:
        value_obj = PyBytes_FromStringAndSize(<char*>value, vlen)
    return (name_obj, value_obj)


cdef inline object _method_bytes(cptr p, Py_ssize_t n):
    if n == 3:
        if memcmp(p, b"GET", 3) == 0:
            return _GET
        if memcmp(p, b"PUT", 3) == 0:
            return _PUT
    elif n == 4:
        if memcmp(p, b"POST", 4) == 0:
            return _POST
        if memcmp(p, b"HEAD", 4) == 0:
            return _HEAD
    elif n == 5:
        if memcmp(p, b"PATCH", 5) == 0:
            return _PATCH
        if memcmp(p, b"TRACE", 5) == 0:
            return _TRACE
    elif n == 6:
        if memcmp(p, b"DELETE", 6) == 0:
            return _DELETE
    elif n == 7:
        if memcmp(p, b"OPTIONS", 7) == 0:
            return _OPTIONS
        if memcmp(p, b"CONNECT", 7) == 0:
            return _CONNECT
    return PyBytes_FromStringAndSize(<char*>p, n)


# --- events -------------------------------------------------------------------

@cython.freelist(32)
@cython.final
cdef class Request:
    """A request head. ``headers`` is a list of (lower-cased name, value)."""

    def __repr__(self):
        return f"<Request {self.method.decode('latin-1')} {self.target!r} HTTP/{self.http_version}>"


@cython.final
cdef class EndOfMessage:
    """The request (body included) is complete; ``trailers`` from chunked bodies."""

    def __init__(self, trailers=()):
        self.trailers = trailers

    def __repr__(self):
        return f"<EndOfMessage trailers={list(self.trailers)!r}>"


cdef EndOfMessage _END = EndOfMessage(())
#: The end of a message without trailers (the common case) is this object.
END = _END


# --- the parser -----------------------------------------------------------------

cdef inline long long _parse_content_length(bytes value) except -2:
    # RFC 9110 8.6: Content-Length = 1*DIGIT. Digits only (0x30-0x39), by hand.
    cdef cptr p = <cptr>PyBytes_AS_STRING(value)
    cdef Py_ssize_t n = PyBytes_GET_SIZE(value), i
    cdef unsigned long long length = 0
    if n == 0:
        raise BadRequest("invalid Content-Length")
    for i in range(n):
        if p[i] < 0x30 or p[i] > 0x39:
            raise BadRequest("invalid Content-Length")
    i = 0
    while i < n and p[i] == 0x30:
        i += 1
    if n - i > MAX_CONTENT_LENGTH_DIGITS:
        raise BadRequest("Content-Length out of range")
    while i < n:
        length = length * 10 + (p[i] - 0x30)
        i += 1
    if length > <unsigned long long>INT64_MAX:
        raise BadRequest("Content-Length out of range")
    return <long long>length


cdef tuple _parse_absolute_form(Request request, bytes target):
    # RFC 9112 3.2.2: absolute-form = absolute-URI; a server MUST accept it.
    cdef Py_ssize_t sep = target.find(b"://")
    cdef bytes scheme = target[:sep] if sep > 0 else b""
    cdef unsigned char first
    if not scheme:
        raise BadRequest("invalid request target")
    first = scheme[0]
    if not (0x41 <= (first | 0x20) - 0x20 <= 0x5A) or not all(
        c in b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+-." for c in scheme
    ):
        raise BadRequest("invalid request target")
    if scheme.lower() not in (b"http", b"https"):
        raise BadRequest("unsupported URI scheme in request target")
    cdef bytes rest = target[sep + 3:]
    cdef Py_ssize_t end = len(rest), i
    for stop in (b"/", b"?"):
        i = rest.find(stop)
        if 0 <= i < end:
            end = i
    cdef bytes authority = rest[:end]
    # RFC 9110 4.2.4: userinfo in an http(s) URI is an error; an empty host is invalid.
    if not fb_valid_authority(<cptr>PyBytes_AS_STRING(authority), len(authority)):
        raise BadRequest("invalid authority in request target")
    # RFC 9112 3.2.2: the origin server MUST ignore Host and use the target's authority.
    request.host = authority
    path, _, query = rest[end:].partition(b"?")
    # RFC 9112 3.3: an empty path component means "/".
    return (path or b"/"), query


cdef class RequestParser:
    """Incremental, strict HTTP/1.1 request parser; one per connection.

    ``feed(data)`` returns the events that ``data`` completed, in order:
    ``Request`` heads, ``bytes`` body pieces and ``EndOfMessage``. A malformed
    request raises a ``ProtocolError`` whose ``events`` attribute holds what
    this call completed before the fault; afterwards the parser refuses input.
    """

    def __cinit__(self):
        self._buf = NULL
        self._bstart = 0
        self._blen = 0
        self._bcap = 0

    def __dealloc__(self):
        if self._buf != NULL:
            free(self._buf)
            self._buf = NULL

    def __init__(
        self,
        *,
        Py_ssize_t max_request_line=limits.MAX_REQUEST_LINE,
        Py_ssize_t max_field_size=limits.MAX_FIELD_SIZE,
        Py_ssize_t max_header_size=limits.MAX_HEADER_SIZE,
        Py_ssize_t max_fields=limits.MAX_FIELDS,
        Py_ssize_t max_chunk_extensions=limits.MAX_CHUNK_EXTENSIONS,
        max_body_size=limits.MAX_BODY_SIZE,
    ):
        self.max_request_line = max_request_line
        self.max_field_size = max_field_size
        self.max_header_size = max_header_size
        self.max_fields = max_fields
        self.max_chunk_extensions = max_chunk_extensions
        # An int, as the other limits (a float would be truncated silently).
        if max_body_size is not None and not PyLong_Check(max_body_size):
            raise TypeError(f"max_body_size must be an int or None, not {type(max_body_size).__name__}")
        self.max_body_size = -1 if max_body_size is None else max_body_size
        self._buffer_clear()
        self._state = S_REQUEST_LINE
        self._error = None
        self._upgrade_pending = False
        self._keep_alive = True
        self._reset_message()

    cdef void _reset_message(self) noexcept:
        self._leading_crlf_seen = False
        self._request = None
        self._fields = None
        self._nfields = 0
        self._section_size = 0
        self._remaining = 0
        self._body_size = 0
        self._n_host = 0
        self._host = None
        self._n_content_length = 0
        self._content_length = None
        self._te_items = 0
        self._te_chunked = 0
        self._te_empty = False
        self._te_last_chunked = False
        self._conn_close = False
        self._conn_keep_alive = False
        self._conn_upgrade = False
        self._upgrade = None
        self._expect_continue = False

    # -- the byte buffer (only for what a feed call could not complete) -----

    cdef int _buffer_append(self, const unsigned char* data, Py_ssize_t n) except -1:
        cdef Py_ssize_t cap
        cdef unsigned char* grown
        if n <= 0:
            return 0
        if self._bstart + self._blen + n > self._bcap:
            if self._bstart:
                memmove(self._buf, self._buf + self._bstart, self._blen)
                self._bstart = 0
            if self._blen + n > self._bcap:
                cap = self._bcap * 2
                if cap < self._blen + n:
                    cap = self._blen + n
                if cap < 1024:
                    cap = 1024
                grown = <unsigned char*>realloc(self._buf, cap)
                if grown == NULL:
                    raise MemoryError()
                self._buf = grown
                self._bcap = cap
        memcpy(self._buf + self._bstart + self._blen, data, n)
        self._blen += n
        return 0

    cdef void _buffer_clear(self) noexcept:
        self._bstart = 0
        self._blen = 0
        if self._bcap > 65536:  # do not keep a paused connection's big buffer
            free(self._buf)
            self._buf = NULL
            self._bcap = 0

    # -- public API ------------------------------------------------------

    @property
    def idle(self):
        """No byte of a next request has arrived (keep-alive idle)."""
        return self._state == S_REQUEST_LINE and self._blen == 0 and not self._leading_crlf_seen

    @property
    def in_head(self):
        """Part of a request head has arrived but not all of it."""
        return (self._state == S_REQUEST_LINE or self._state == S_HEADERS) and not self.idle

    @property
    def paused(self):
        """An Upgrade request completed; bytes are held for the new protocol."""
        return self._state == S_PAUSED

    def feed(self, data):
        cdef Py_buffer view
        cdef int state = self._state
        if state == S_ERROR:
            raise type(self._error)(self._error.reason)
        if state == S_CLOSED:
            return []
        if PyBytes_CheckExact(data):
            return self._feed(<cptr>PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data), data)
        PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
        try:
            return self._feed(<cptr>view.buf, view.len, None)
        finally:
            PyBuffer_Release(&view)

    cdef list _feed(self, cptr data, Py_ssize_t n, object src):
        cdef list events
        cdef Py_ssize_t consumed
        if self._state == S_PAUSED:
            self._buffer_append(data, n)
            return []
        events = []
        try:
            if self._blen == 0:
                # The common case: nothing held back, parse the caller's bytes in place.
                consumed = self._run(data, n, src, events)
                if self._state != S_CLOSED and consumed < n:
                    self._buffer_append(data + consumed, n - consumed)
            else:
                self._buffer_append(data, n)
                consumed = self._run(self._buf + self._bstart, self._blen, None, events)
                if self._state == S_CLOSED:
                    self._buffer_clear()
                else:
                    self._bstart += consumed
                    self._blen -= consumed
                    if self._blen == 0:
                        self._bstart = 0
        except ProtocolError as exc:
            self._state = S_ERROR
            self._error = exc
            self._buffer_clear()
            exc.events = events
            raise
        return events

    def resume(self):
        """The upgrade was declined: go on parsing the held bytes as HTTP/1.1."""
        if self._state != S_PAUSED:
            return []
        # RFC 9112 9.6: declining the upgrade does not undo a "close" option.
        if not self._keep_alive:
            self._state = S_CLOSED
            self._buffer_clear()
            return []
        self._state = S_REQUEST_LINE
        return self.feed(b"")

    def take_buffer(self):
        """The upgrade was accepted: hand over the held bytes; HTTP parsing ends."""
        data = PyBytes_FromStringAndSize(<char*>self._buf + self._bstart, self._blen)
        self._buffer_clear()
        self._state = S_CLOSED
        return data

    # -- the state machine -------------------------------------------------

    cdef Py_ssize_t _run(self, cptr buf, Py_ssize_t n, object src, list events) except -1:
        """Parse buf[:n]; return how many bytes were used up."""
        cdef Py_ssize_t pos = 0, length, avail
        cdef long long take
        cdef cptr end = buf + n
        cdef cptr p
        cdef cptr q
        cdef cptr t
        cdef cptr name_end
        cdef cptr vstart
        cdef cptr vend
        cdef int state
        cdef object piece
        while True:
            state = self._state
            p = buf + pos
            if state == S_HEADERS or state == S_TRAILERS:
                # Fast path: a complete, valid field line or the empty line,
                # within the limits. Anything else takes the slow path below,
                # which checks in the twin's order. Fast-path copy of
                # _take_line + _parse_field (RequestParser); keep in step (the
                # corpora fed byte by byte run the slow path).
                if p + 1 < end and p[0] == CR and p[1] == LF:
                    if self._section_size + 2 <= self.max_header_size:
                        pos += 2
                        self._section_size += 2
                        if state == S_HEADERS:
                            self._finish_head(events)
                        else:
                            self._end_message(events, EndOfMessage(self._fields) if self._fields else _END)
                        continue
                else:
                    q = fb_scan_token(p, end)
                    if q != p and q < end and q[0] == 58:  # ":"
                        name_end = q
                        q += 1
                        while q < end and (q[0] == SP or q[0] == HTAB):
                            q += 1
                        vstart = q
                        while True:
                            q = fb_scan_value(q, end)
                            if q < end and q[0] == HTAB:
                                q += 1
                                continue
                            break
                        if q + 1 < end and q[0] == CR and q[1] == LF:
                            length = q - p
                            if (length <= self.max_field_size
                                    and self._section_size + length + 2 <= self.max_header_size):
                                vend = q
                                while vend > vstart and ((vend - 1)[0] == SP or (vend - 1)[0] == HTAB):
                                    vend -= 1
                                pos += length + 2
                                self._section_size += length + 2
                                self._add_field(p, name_end - p, vstart, vend - vstart)
                                continue
                length = self._take_line(p, n - pos, self.max_field_size, LINE_FIELD, self._section_size)
                if length < 0:
                    return pos
                pos += length + 2
                self._section_size += length + 2
                if length:
                    self._parse_field(p, length)
                elif state == S_HEADERS:
                    self._finish_head(events)
                else:
                    self._end_message(events, EndOfMessage(self._fields) if self._fields else _END)
            elif state == S_REQUEST_LINE:
                # Fast path: method SP target SP "HTTP/1.x" CRLF, all valid.
                # Fast-path copy of _take_line + _parse_request_line
                # (RequestParser); keep in step (the corpora fed byte by byte
                # run the slow path).
                q = p
                while q < end and fb_tchar[q[0]]:
                    q += 1
                if q != p and q < end and q[0] == SP:
                    t = q + 1
                    q = fb_scan_target(t, end)
                    if (q != t and end - q >= 11 and q[0] == SP and memcmp(q + 1, b"HTTP/1.", 7) == 0
                            and 0x30 <= q[8] <= 0x39 and q[9] == CR and q[10] == LF):
                        length = q + 9 - p
                        if length <= self.max_request_line:
                            self._start_request(p, t - 1 - p, t, q - t, q[8] != 0x30)
                            pos += length + 2
                            self._state = S_HEADERS
                            continue
                self._check_method_prefix(p, n - pos)
                length = self._take_line(p, n - pos, self.max_request_line, LINE_REQUEST, -1)
                if length < 0:
                    return pos
                pos += length + 2
                # RFC 9112 2.2: a server SHOULD ignore at least one empty line
                # (CRLF) before the request-line. Exactly one: more is refused.
                if length == 0 and not self._leading_crlf_seen:
                    self._leading_crlf_seen = True
                    continue
                self._parse_request_line(p, length)
                self._state = S_HEADERS
            elif state == S_BODY or state == S_CHUNK_DATA:
                avail = n - pos
                if avail == 0:
                    return pos
                take = self._remaining if self._remaining < avail else avail
                if src is not None and take == n:
                    piece = src  # the caller's bytes are exactly this piece
                else:
                    piece = PyBytes_FromStringAndSize(<char*>p, <Py_ssize_t>take)
                events.append(piece)
                pos += <Py_ssize_t>take
                self._remaining -= take
                if self._remaining == 0:
                    if state == S_BODY:
                        self._end_message(events, _END)
                    else:
                        self._state = S_CHUNK_CRLF
            elif state == S_CHUNK_SIZE:
                length = self._take_line(p, n - pos, MAX_CHUNK_SIZE_DIGITS + self.max_chunk_extensions,
                                         LINE_CHUNK, -1)
                if length < 0:
                    return pos
                pos += length + 2
                self._parse_chunk_size(p, length)
            elif state == S_CHUNK_CRLF:
                # RFC 9112 7.1: chunk = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
                # The CRLF after the data is exact; anything else desyncs framing.
                avail = n - pos
                if avail == 0:
                    return pos
                if p[0] != CR or (avail > 1 and p[1] != LF):
                    raise BadRequest("chunk data not followed by CRLF")
                if avail < 2:
                    return pos
                pos += 2
                self._state = S_CHUNK_SIZE
            else:  # paused or closed: whatever follows is not ours to parse
                return pos

    cdef int _check_method_prefix(self, cptr p, Py_ssize_t avail) except -1:
        """RFC 9110 9.1: method = token, checked as its bytes arrive, so a
        client that does not speak HTTP (TLS on the plain port) is refused at
        once. The scan stops where the length limit would, so the status never
        depends on how the input was split. (The fast path above only accepts
        a token method, which this scan would pass.)"""
        cdef Py_ssize_t i
        cdef unsigned char c
        if self.max_request_line < avail - 2:
            avail = self.max_request_line + 2
        for i in range(avail):
            c = p[i]
            if not fb_tchar[c]:
                if c == SP or c == CR or c == LF:
                    return 0
                raise BadRequest("invalid method")
        return 0

    cdef Py_ssize_t _take_line(self, cptr p, Py_ssize_t avail, Py_ssize_t limit,
                               int kind, Py_ssize_t section) except -2:
        """Length of the line at p (CRLF excluded), or -1 while it is incomplete.

        ``section`` is the header section's size so far (-1 outside one).
        Limits are checked before content, and on incomplete lines as on
        complete ones, so the status does not depend on where input was split.
        """
        cdef cptr nl = <cptr>memchr(p, LF, avail)
        cdef Py_ssize_t received = avail if nl == NULL else (nl - p) + 1
        cdef Py_ssize_t length
        cdef bint has_cr
        if section >= 0 and section + received > self.max_header_size:
            raise HeaderFieldsTooLarge("header section too large")
        if nl == NULL:
            # An incomplete line longer than the limit (plus a CR still waiting
            # for its LF) can only end as an over-long line: refuse it now.
            if avail - 1 > limit:
                self._too_long(kind)
            return -1
        has_cr = nl > p and (nl - 1)[0] == CR
        length = (nl - p) - has_cr
        if length > limit:
            self._too_long(kind)
        # RFC 9112 2.2: a recipient MAY accept a bare LF as line terminator;
        # this one does not (bare LF is a smuggling vector).
        if not has_cr:
            raise BadRequest("bare LF in request")
        # RFC 9112 2.2: a bare CR MUST be considered invalid.
        if memchr(p, CR, length) != NULL:
            raise BadRequest("bare CR in request")
        return length

    cdef int _too_long(self, int kind) except -1:
        if kind == LINE_REQUEST:
            raise URITooLong("request line too long")
        if kind == LINE_FIELD:
            raise HeaderFieldsTooLarge("header field too long")
        raise BadRequest("chunk size line too long")

    cdef int _parse_request_line(self, cptr line, Py_ssize_t size) except -1:
        # Inlined in _feed's request-line fast path for speed.
        cdef cptr end = line + size
        cdef cptr sp1
        cdef cptr sp2
        cdef cptr v
        cdef cptr c
        # RFC 9112 3: request-line = method SP request-target SP HTTP-version
        # Exactly one SP between the parts; no other whitespace anywhere.
        sp1 = <cptr>memchr(line, SP, size)
        sp2 = NULL
        if sp1 != NULL:
            sp2 = <cptr>memchr(sp1 + 1, SP, end - sp1 - 1)
        if (sp2 == NULL or memchr(sp2 + 1, SP, end - sp2 - 1) != NULL
                or sp1 == line or sp2 == sp1 + 1 or sp2 + 1 == end):
            raise BadRequest("malformed request line")
        v = sp2 + 1
        # RFC 9112 2.3: HTTP-version = HTTP-name "/" DIGIT "." DIGIT, HTTP-name = %s"HTTP".
        if (end - v != 8 or memcmp(v, b"HTTP/", 5) != 0 or v[6] != 0x2E
                or not (0x30 <= v[5] <= 0x39) or not (0x30 <= v[7] <= 0x39)):
            raise BadRequest("malformed HTTP version")
        # RFC 9110 15.6.6: 505 for an unsupported major version (also the h2 preface).
        if v[5] != 0x31:
            raise VersionNotSupported("HTTP version not supported")
        # RFC 9110 9.1: method = token, case-sensitive.
        if not _all_tchar(line, sp1 - line):
            raise BadRequest("invalid method")
        # RFC 9112 3.2: no whitespace, CTL, DEL or "#" fragment in the target.
        c = sp1 + 1
        while c < sp2:
            if not fb_target_ok[c[0]]:
                raise BadRequest("invalid character in request target")
            c += 1
        # RFC 9110 2.5: a 1.x minor version above ours is handled as ours.
        self._start_request(line, sp1 - line, sp1 + 1, sp2 - sp1 - 1, v[7] != 0x30)
        return 0

    cdef int _start_request(self, cptr method, Py_ssize_t mlen, cptr target, Py_ssize_t tlen,
                            bint http11) except -1:
        cdef Request request = Request.__new__(Request)
        cdef cptr qm
        cdef bytes target_obj
        if tlen == 1 and target[0] == 0x2F:
            target_obj = _SLASH
        else:
            target_obj = PyBytes_FromStringAndSize(<char*>target, tlen)
        request.method = _method_bytes(method, mlen)
        request.target = target_obj
        request.http_version = _V11 if http11 else _V10
        request.host = None
        # RFC 9112 3.2.3: authority-form is only for CONNECT (a tunnel), which
        # an origin server does not provide; RFC 9110 9.3.6: CONNECT's target
        # is only host and port, so CONNECT in any form gets 501.
        if request.method is _CONNECT:
            raise NotImplementedByServer("CONNECT is not supported")
        if target[0] == 0x2F:  # "/": origin-form (RFC 9112 3.2.1)
            qm = <cptr>memchr(target, 0x3F, tlen)
            if qm == NULL:
                request.path = target_obj
                request.query = _EMPTY
            else:
                request.path = PyBytes_FromStringAndSize(<char*>target, qm - target)
                request.query = PyBytes_FromStringAndSize(<char*>qm + 1, tlen - (qm - target) - 1)
        elif tlen == 1 and target[0] == 0x2A:
            # RFC 9112 3.2.4: asterisk-form is only for a server-wide OPTIONS.
            if request.method is not _OPTIONS:
                raise BadRequest("asterisk-form is only for OPTIONS")
            request.path = target_obj
            request.query = _EMPTY
        else:
            request.path, request.query = _parse_absolute_form(request, target_obj)
        self._request = request
        self._http11 = http11
        return 0

    cdef int _parse_field(self, cptr line, Py_ssize_t size) except -1:
        # Inlined in _feed's field-line fast path for speed.
        cdef cptr end = line + size
        cdef cptr colon
        cdef cptr v
        cdef cptr vend
        cdef cptr c
        # RFC 9112 5.2: obs-fold is refused with 400 (and RFC 9112 2.2:
        # whitespace between the start-line and the first field).
        if line[0] == SP or line[0] == HTAB:
            raise BadRequest("obsolete line folding")
        colon = <cptr>memchr(line, 0x3A, size)
        if colon == NULL or colon == line:
            raise BadRequest("header line without a name")
        # RFC 9112 5.1: no whitespace between field name and colon; a server
        # MUST reject it with 400. field-name = token (RFC 9110 5.1).
        if not _all_tchar(line, colon - line):
            raise BadRequest("invalid header name")
        # RFC 9112 5.1: OWS around the value is not part of it; only SP and
        # HTAB are OWS.
        v = colon + 1
        vend = end
        while v < vend and (v[0] == SP or v[0] == HTAB):
            v += 1
        while vend > v and ((vend - 1)[0] == SP or (vend - 1)[0] == HTAB):
            vend -= 1
        # RFC 9110 5.5: field-vchar = VCHAR / obs-text; CR, LF, NUL (and the
        # other CTLs, DEL) are refused.
        c = v
        while c < vend:
            if not fb_field_ok(c[0]):
                raise BadRequest("invalid character in header value")
            c += 1
        self._add_field(line, colon - line, v, vend - v)
        return 0

    cdef int _add_field(self, cptr name, Py_ssize_t nlen, cptr value, Py_ssize_t vlen) except -1:
        cdef int slot = _name_slot(name, nlen)
        cdef int kind = _name_kind[slot] if slot >= 0 else F_OTHER
        cdef object field = _field(slot, name, nlen, value, vlen)
        cdef object value_obj
        cdef cptr item
        cdef cptr item_end
        cdef cptr stop
        cdef cptr vlimit
        if self._fields is None:
            self._fields = []
        self._fields.append(field)
        self._nfields += 1
        if self._nfields > self.max_fields:
            raise HeaderFieldsTooLarge("too many header fields")
        if kind == F_OTHER or self._state != S_HEADERS:
            return 0
        value_obj = (<tuple>field)[1]
        if kind == F_HOST:
            self._n_host += 1
            self._host = value_obj
        elif kind == F_CONTENT_LENGTH:
            self._n_content_length += 1
            if self._n_content_length == 1:
                self._content_length = value_obj
        elif kind == F_UPGRADE:
            # RFC 9110 5.3: several Upgrade lines are one list, in order;
            # RFC 9110 7.8: Upgrade = #protocol, so an empty line offers nothing.
            if vlen:
                self._upgrade = value_obj if self._upgrade is None else self._upgrade + b", " + value_obj
        elif kind == F_EXPECT:
            # RFC 9110 10.1.1: a 100-continue expectation in an HTTP/1.0
            # request MUST be ignored.
            self._expect_continue = self._http11 and vlen == 12 and _ieq(value, b"100-continue", 12)
        else:
            # RFC 9110 5.6.1: #element lists, comma-separated with OWS.
            vlimit = value + vlen
            item = value
            while True:
                stop = <cptr>memchr(item, 0x2C, vlimit - item)
                if stop == NULL:
                    stop = vlimit
                item_end = stop
                while item < item_end and (item[0] == SP or item[0] == HTAB):
                    item += 1
                while item_end > item and ((item_end - 1)[0] == SP or (item_end - 1)[0] == HTAB):
                    item_end -= 1
                if kind == F_TRANSFER_ENCODING:
                    self._te_items += 1
                    self._te_last_chunked = item_end - item == 7 and _ieq(item, b"chunked", 7)
                    if item_end == item:
                        self._te_empty = True
                    elif self._te_last_chunked:
                        self._te_chunked += 1
                elif item_end - item == 5:
                    if _ieq(item, b"close", 5):
                        self._conn_close = True
                elif item_end - item == 10:
                    if _ieq(item, b"keep-alive", 10):
                        self._conn_keep_alive = True
                elif item_end - item == 7:
                    if _ieq(item, b"upgrade", 7):
                        self._conn_upgrade = True
                if stop == vlimit:
                    break
                item = stop + 1
        return 0

    cdef int _finish_head(self, list events) except -1:
        cdef Request request = self._request
        cdef bint http11 = self._http11
        cdef bint chunked = False
        cdef bint keep_alive
        cdef long long length = 0
        cdef object upgrade
        # RFC 9112 6.3 item 5: several Content-Length values are unrecoverable;
        # identical duplicates and lists are refused too (intermediaries disagree).
        if self._n_content_length > 1:
            raise BadRequest("duplicate Content-Length")
        # RFC 9112 3.2: 400 for an HTTP/1.1 request without Host, with more
        # than one Host line, or with an invalid Host value.
        if self._n_host > 1:
            raise BadRequest("more than one Host header")
        if self._n_host == 1:
            if not fb_valid_authority(<cptr>PyBytes_AS_STRING(self._host), PyBytes_GET_SIZE(self._host)):
                raise BadRequest("invalid Host header")
        elif http11:
            raise BadRequest("missing Host header")
        if request.host is None:
            request.host = self._host
        if self._te_items:
            # RFC 9112 6.1: Transfer-Encoding in HTTP/1.0 means faulty framing.
            if not http11:
                raise BadRequest("Transfer-Encoding in an HTTP/1.0 request")
            # RFC 9112 6.3 item 3: TE with CL might be smuggling; refused.
            if self._n_content_length:
                raise BadRequest("both Transfer-Encoding and Content-Length")
            if self._te_empty:
                raise BadRequest("invalid Transfer-Encoding")
            # RFC 9112 6.3 item 4: chunked not final -> 400; RFC 9112 6.1:
            # chunked MUST NOT be applied more than once.
            if not self._te_last_chunked or self._te_chunked > 1:
                raise BadRequest("chunked must be the final and only chunked coding")
            # RFC 9112 6.1: a transfer coding the server does not understand -> 501.
            if self._te_items > 1:
                raise NotImplementedByServer("unsupported transfer coding")
            chunked = True
        elif self._n_content_length:
            length = _parse_content_length(self._content_length)
            if self.max_body_size >= 0 and length > self.max_body_size:
                raise ContentTooLarge("request body too large")
        # RFC 9112 9.3: HTTP/1.1 persists unless "close"; HTTP/1.0 only with
        # "keep-alive" (RFC 9112 C.2.2).
        if self._conn_close:
            keep_alive = False
        else:
            keep_alive = http11 or self._conn_keep_alive
        # RFC 9110 7.8: ignore Upgrade in HTTP/1.0; the sender MUST also list
        # "upgrade" in Connection.
        upgrade = self._upgrade if (http11 and self._conn_upgrade) else None
        request.headers = self._fields if self._fields is not None else []
        request.keep_alive = keep_alive
        request.chunked = chunked
        request.content_length = None if chunked else length
        request.expect_continue = self._expect_continue
        request.upgrade = upgrade
        events.append(request)
        self._upgrade_pending = upgrade is not None
        self._keep_alive = keep_alive
        self._fields = None
        self._nfields = 0
        self._section_size = 0
        if chunked:
            self._state = S_CHUNK_SIZE
        elif length:
            self._remaining = length
            self._state = S_BODY
        else:
            self._end_message(events, _END)
        return 0

    cdef int _parse_chunk_size(self, cptr line, Py_ssize_t size) except -1:
        # RFC 9112 7.1: chunk-size = 1*HEXDIG, then chunk-ext (RFC 9112 7.1.1).
        cdef Py_ssize_t n = 0, i
        cdef unsigned long long chunk = 0
        while n < size and fb_hexval[line[n]] != 0xFF:
            n += 1
        if n == 0:
            raise BadRequest("invalid chunk size")
        if n > MAX_CHUNK_SIZE_DIGITS:
            raise BadRequest("chunk size too large")
        if size - n > self.max_chunk_extensions:
            raise BadRequest("chunk extensions too long")
        if n < size and not fb_chunk_ext_ok(line, n, size):
            raise BadRequest("invalid chunk extension")
        for i in range(n):
            chunk = (chunk << 4) | fb_hexval[line[i]]
        if chunk == 0:
            self._state = S_TRAILERS
            self._fields = None
            self._nfields = 0
            self._section_size = 0
            return 0
        if chunk > <unsigned long long>INT64_MAX:
            raise BadRequest("chunk size too large")
        if self._body_size > INT64_MAX - <long long>chunk:
            self._body_size = INT64_MAX
        else:
            self._body_size += <long long>chunk
        if self.max_body_size >= 0 and self._body_size > self.max_body_size:
            raise ContentTooLarge("request body too large")
        self._remaining = <long long>chunk
        self._state = S_CHUNK_DATA
        return 0

    cdef int _end_message(self, list events, object end) except -1:
        cdef bint upgrade = self._upgrade_pending
        cdef bint keep_alive = self._keep_alive
        events.append(end)
        self._reset_message()
        self._upgrade_pending = False
        if upgrade:
            self._state = S_PAUSED
        elif keep_alive:
            self._state = S_REQUEST_LINE
        else:
            # RFC 9112 9.6: after "close" no further requests are processed
            # (the caller drops the rest of the bytes).
            self._state = S_CLOSED
        return 0


# --- response writer -------------------------------------------------------------

# The framing modes and fixed byte strings are wire.py's, shared with the twin.
cdef Py_ssize_t _one_write_limit = ONE_WRITE_LIMIT

cdef long long _date_second = -1
cdef bytes _date_value = b""
cdef char _date_line[48]  # "date: " + IMF-fixdate + CRLF
cdef Py_ssize_t _date_line_len = 0


cdef int _refresh_date() except -1:
    global _date_second, _date_value, _date_line_len
    cdef long long now = fb_now()
    cdef char stamp[32]
    if now != _date_second:
        fb_format_date(now, stamp)
        _date_value = PyBytes_FromStringAndSize(stamp, 29)
        memcpy(_date_line, b"date: ", 6)
        memcpy(_date_line + 6, stamp, 29)
        memcpy(_date_line + 35, b"\r\n", 2)
        _date_line_len = 37
        _date_second = now
    return 0


def date_header_value():
    """IMF-fixdate for now (RFC 9110 5.6.7), recomputed at most once a second."""
    _refresh_date()
    return _date_value


cdef struct _Out:
    char* data
    Py_ssize_t size
    Py_ssize_t cap
    bint heap


cdef inline void _out_start(_Out* out, char* stack, Py_ssize_t cap) noexcept:
    # An empty buffer in the caller's stack space; _out_grow moves it to the
    # heap when it fills (the caller frees out.data if out.heap).
    out.data = stack
    out.size = 0
    out.cap = cap
    out.heap = False


cdef int _out_grow(_Out* out, Py_ssize_t need) except -1:
    cdef Py_ssize_t cap = out.cap * 2
    cdef char* grown
    if cap < out.size + need:
        cap = out.size + need
    if out.heap:
        grown = <char*>realloc(out.data, cap)
    else:
        grown = <char*>malloc(cap)
        if grown != NULL:
            memcpy(grown, out.data, out.size)
    if grown == NULL:
        raise MemoryError()
    out.data = grown
    out.cap = cap
    out.heap = True
    return 0


cdef inline int _put(_Out* out, const char* s, Py_ssize_t n) except -1:
    if out.size + n > out.cap:
        _out_grow(out, n)
    memcpy(out.data + out.size, s, n)
    out.size += n
    return 0


cdef int _put_int(_Out* out, long long value) except -1:
    cdef char digits[24]
    cdef int i = 24
    if value == 0:
        return _put(out, b"0", 1)
    while value > 0:
        i -= 1
        digits[i] = <char>(0x30 + value % 10)
        value //= 10
    return _put(out, digits + i, 24 - i)


cdef inline object _text(object value, str what):
    """bytes, or a str whose 1-byte (latin-1) storage is read in place."""
    if PyBytes_Check(value):
        return value
    if PyUnicode_Check(value):
        if PyUnicode_KIND(value) == PyUnicode_1BYTE_KIND:
            return value
        raise InvalidResponse(f"{what} is not latin-1: {value!r}")
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    raise InvalidResponse(f"{what} must be str or bytes, not {type(value).__name__}")


cdef inline cptr _text_ptr(object text, Py_ssize_t* size):
    if PyBytes_Check(text):
        size[0] = PyBytes_GET_SIZE(text)
        return <cptr>PyBytes_AS_STRING(text)
    size[0] = PyUnicode_GET_LENGTH(text)
    return <cptr>PyUnicode_DATA(text)


cdef inline bytes _as_bytes(object text):
    return text if PyBytes_Check(text) else (<str>text).encode("latin-1")


cdef inline bint _has_crlfnul(cptr p, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(n):
        if fb_resp_bad[p[i]]:
            return True
    return False


cdef PyObject* _status_cache[900]
# The standard reason phrase (str) of each code, as REASONS gives it.
cdef PyObject* _reason_cache[900]


cdef bytes _status_line(object status, object reason):
    cdef long code = 0
    cdef int overflow = 1
    cdef bytes line, standard, phrase
    cdef object standard_text
    cdef Py_ssize_t size
    if type(status) is int:
        # In C: compared as Python objects, the range check costs two calls.
        code = PyLong_AsLongAndOverflow(status, &overflow)
    if overflow or not (100 <= code <= 999):
        raise InvalidResponse(f"invalid status code: {status!r}")
    if reason is not None:
        # The standard phrase given explicitly (WSGI always gives one) takes
        # the cached line too; the str itself is compared, not its encoding.
        if _reason_cache[code - 100] == NULL:
            standard_text = REASONS.get(code, "")
            Py_INCREF(standard_text)
            _reason_cache[code - 100] = <PyObject*>standard_text
        if reason is <object>_reason_cache[code - 100] or (
            type(reason) is str and reason == <object>_reason_cache[code - 100]
        ):
            reason = None
    if reason is None:
        if _status_cache[code - 100] != NULL:
            return <bytes><object>_status_cache[code - 100]
        standard = REASONS.get(code, "").encode("latin-1")
        line = b"HTTP/1.1 %d %s\r\n" % (code, standard)
        Py_INCREF(line)
        _status_cache[code - 100] = <PyObject*>line
        return line
    phrase = _as_bytes(_text(reason, "reason phrase"))
    # RFC 9110 5.5: no CR, LF or NUL (response splitting).
    if _has_crlfnul(<cptr>PyBytes_AS_STRING(phrase), PyBytes_GET_SIZE(phrase)):
        raise InvalidResponse(f"reason phrase contains CR, LF or NUL: {phrase!r}")
    if phrase == REASONS.get(code, "").encode("latin-1"):
        return _status_line(status, None)
    return b"HTTP/1.1 %d %s\r\n" % (code, phrase)


cdef inline bint _list_has_close(cptr p, Py_ssize_t n) noexcept nogil:
    # RFC 9110 5.6.1: #element list; RFC 9110 7.6.1: the "close" option.
    cdef cptr end = p + n
    cdef cptr stop
    cdef cptr item_end
    while True:
        stop = <cptr>memchr(p, 0x2C, end - p)
        if stop == NULL:
            stop = end
        item_end = stop
        while p < item_end and (p[0] == SP or p[0] == HTAB):
            p += 1
        while item_end > p and ((item_end - 1)[0] == SP or (item_end - 1)[0] == HTAB):
            item_end -= 1
        if item_end - p == 5 and _ieq(p, b"close", 5):
            return True
        if stop == end:
            return False
        p = stop + 1


# Response fields the writer handles itself.
cdef enum:
    R_OTHER = 0
    R_CONTENT_LENGTH = 1
    R_CONNECTION = 2
    R_DROP = 3  # Transfer-Encoding, Keep-Alive: re-derived by the server
    R_DATE = 4
    R_SERVER = 5


cdef inline int _response_field(cptr p, Py_ssize_t n) noexcept nogil:
    if n == 14:
        if _ieq(p, b"content-length", 14):
            return R_CONTENT_LENGTH
    elif n == 10:
        if _ieq(p, b"connection", 10):
            return R_CONNECTION
        if _ieq(p, b"keep-alive", 10):
            return R_DROP
    elif n == 17:
        if _ieq(p, b"transfer-encoding", 17):
            return R_DROP
    elif n == 4:
        if _ieq(p, b"date", 4):
            return R_DATE
    elif n == 6:
        if _ieq(p, b"server", 6):
            return R_SERVER
    return R_OTHER


cdef int _put_fields(_Out* out, object fields, str what_name, str what_value) except -1:
    """Validate and write ``name: value`` lines (trailers: no special fields)."""
    cdef object name, value, ntext, vtext
    cdef cptr np
    cdef cptr vp
    cdef Py_ssize_t nn, vn
    for name, value in fields:
        ntext = _text(name, what_name)
        vtext = _text(value, what_value)
        np = _text_ptr(ntext, &nn)
        vp = _text_ptr(vtext, &vn)
        # RFC 9110 5.1: field-name = token.
        if not _all_tchar(np, nn):
            raise InvalidResponse(f"invalid {what_name}: {_as_bytes(ntext)!r}")
        # RFC 9110 5.5: CR, LF and NUL are never allowed (response splitting).
        if _has_crlfnul(vp, vn):
            raise InvalidResponse(f"{what_value} contains CR, LF or NUL: {_as_bytes(vtext)!r}")
        _put(out, <const char*>np, nn)
        _put(out, b": ", 2)
        _put(out, <const char*>vp, vn)
        _put(out, b"\r\n", 2)
    return 0


cdef int _encode_head(_Out* out, object status, object headers, object reason, bint http11,
                      bint keep_alive, bint head_request, long long body_length, object server,
                      int* framing_out, long long* length_out, bint* keep_alive_out) except -1:
    # Writes the head into out; the framing, declared length and keep-alive
    # decision come back through the pointers.
    cdef bytes line = _status_line(status, reason)
    cdef long code = status
    cdef long long content_length = -1, declared
    cdef bint has_date = False, has_server = False
    cdef bint switching = code == 101
    # RFC 9110 8.6: no Content-Length in a 1xx or 204 response.
    cdef bint drop_length = code < 200 or code == 204
    cdef int framing, kind
    cdef object name, value, ntext, vtext
    cdef cptr np
    cdef cptr vp
    cdef cptr d
    cdef cptr dend
    cdef Py_ssize_t nn, vn, i
    _put(out, PyBytes_AS_STRING(line), PyBytes_GET_SIZE(line))
    for name, value in headers:
        ntext = _text(name, "header name")
        vtext = _text(value, "header value")
        np = _text_ptr(ntext, &nn)
        vp = _text_ptr(vtext, &vn)
        # RFC 9110 5.1: field-name = token.
        if not _all_tchar(np, nn):
            raise InvalidResponse(f"invalid header name: {_as_bytes(ntext)!r}")
        # RFC 9110 5.5: CR, LF and NUL are never allowed (response splitting).
        if _has_crlfnul(vp, vn):
            raise InvalidResponse(f"header value contains CR, LF or NUL: {_as_bytes(vtext)!r}")
        kind = _response_field(np, nn)
        if kind == R_CONTENT_LENGTH:
            d = vp
            dend = vp + vn
            while d < dend and (d[0] == SP or d[0] == HTAB):
                d += 1
            while dend > d and ((dend - 1)[0] == SP or (dend - 1)[0] == HTAB):
                dend -= 1
            if d == dend or dend - d > 18:
                raise InvalidResponse(f"invalid Content-Length: {_as_bytes(vtext)!r}")
            declared = 0
            for i in range(dend - d):
                if not (0x30 <= d[i] <= 0x39):
                    raise InvalidResponse(f"invalid Content-Length: {_as_bytes(vtext)!r}")
                declared = declared * 10 + (d[i] - 0x30)
            if content_length >= 0 and declared != content_length:
                raise InvalidResponse("conflicting Content-Length headers")
            if content_length >= 0:
                continue
            content_length = declared
            if drop_length:
                continue
            vp = d
            vn = dend - d
        elif kind == R_CONNECTION:
            if _list_has_close(vp, vn):
                keep_alive = False
            if not switching:
                continue
        elif kind == R_DROP:
            continue
        elif kind == R_DATE:
            has_date = True
        elif kind == R_SERVER:
            has_server = True
        _put(out, <const char*>np, nn)
        _put(out, b": ", 2)
        _put(out, <const char*>vp, vn)
        _put(out, b"\r\n", 2)

    if code < 200 or code == 204 or code == 304:
        framing = NO_BODY
        content_length = -1
    elif head_request:
        # RFC 9110 9.3.2: the same fields as for GET, no content.
        framing = NO_BODY
        if content_length < 0 and body_length >= 0:
            _put(out, b"content-length: ", 16)
            _put_int(out, body_length)
            _put(out, b"\r\n", 2)
        content_length = -1
    elif content_length >= 0:
        framing = LENGTH
    elif body_length >= 0:
        framing = LENGTH
        content_length = body_length
        _put(out, b"content-length: ", 16)
        _put_int(out, body_length)
        _put(out, b"\r\n", 2)
    elif http11:
        framing = CHUNKED
        _put(out, b"transfer-encoding: chunked\r\n", 28)
    else:
        # RFC 9112 6.3 item 8: a response without a length ends at close.
        framing = CLOSE_DELIMITED
        keep_alive = False

    if switching:
        keep_alive = True
    elif not keep_alive:
        _put(out, b"connection: close\r\n", 19)
    elif not http11:
        _put(out, b"connection: keep-alive\r\n", 24)
    if not has_date:
        _refresh_date()
        _put(out, _date_line, _date_line_len)
    if server is not None and not has_server:
        if PyBytes_CheckExact(server):
            _put(out, b"server: ", 8)
            _put(out, PyBytes_AS_STRING(server), PyBytes_GET_SIZE(server))
            _put(out, b"\r\n", 2)
        else:
            server_line = b"server: %s\r\n" % (server,)
            _put(out, PyBytes_AS_STRING(server_line), PyBytes_GET_SIZE(server_line))
    _put(out, b"\r\n", 2)
    framing_out[0] = framing
    length_out[0] = content_length
    keep_alive_out[0] = keep_alive
    return 0


def encode_head(status, headers, *, reason=None, bint http11=True, bint keep_alive=True,
                bint head_request=False, body_length=-1, server=b"fastbase"):
    """Serialize a response head; decide the body framing.

    ``headers`` come from the application (str or bytes pairs). Hop-by-hop
    fields are the server's business: ``Connection`` ("close" is honoured),
    ``Keep-Alive`` and ``Transfer-Encoding`` are dropped and re-derived, except
    on 101 where ``Connection``/``Upgrade`` pass through. ``body_length`` is
    the whole body's size when the caller already knows it (-1 otherwise).

    Returns ``(head_bytes, framing, content_length, keep_alive)`` where
    framing is NO_BODY, LENGTH, CHUNKED or CLOSE_DELIMITED and content_length
    is the declared length for LENGTH (-1 otherwise).
    """
    cdef char stack[2048]
    cdef _Out out
    _out_start(&out, stack, sizeof(stack))
    cdef int framing
    cdef long long length
    # An int (a float would be truncated into the Content-Length).
    if not PyLong_Check(body_length):
        raise TypeError(f"body_length must be an int, not {type(body_length).__name__}")
    try:
        _encode_head(&out, status, headers, reason, http11, keep_alive, head_request,
                     body_length, server, &framing, &length, &keep_alive)
        return (PyBytes_FromStringAndSize(out.data, out.size), framing, length, keep_alive)
    finally:
        if out.heap:
            free(out.data)


def encode_response(status, headers, bytes body not None, reason, bint http11, bint keep_alive,
                    bint head_request, server):
    """A whole response whose body is ``body``, head and body in one bytes
    object: ``(data, keep_alive)``, or None when it is not sent that way (a
    HEAD request, a 1xx/204/304 status, a declared Content-Length that
    differs from the body, or a body of ONE_WRITE_LIMIT bytes or more, better
    sent with writev than copied); the caller then frames it with
    encode_head. Arguments as for encode_head, all positional: this is the
    common response's path.
    """
    cdef Py_ssize_t size = PyBytes_GET_SIZE(body)
    if size >= _one_write_limit:
        return None
    cdef char stack[2048]
    cdef _Out out
    _out_start(&out, stack, sizeof(stack))
    cdef int framing
    cdef long long length
    try:
        _encode_head(&out, status, headers, reason, http11, keep_alive, head_request,
                     size, server, &framing, &length, &keep_alive)
        if framing != LENGTH or length != size:
            return None
        _put(&out, PyBytes_AS_STRING(body), size)
        return (PyBytes_FromStringAndSize(out.data, out.size), keep_alive)
    finally:
        if out.heap:
            free(out.data)


cdef const char* _HEXDIGITS = b"0123456789abcdef"


def encode_chunk(data):
    """One chunk (RFC 9112 7.1); empty data encodes to nothing, since an
    empty chunk would end the body."""
    cdef Py_ssize_t n, digits, i
    cdef bytes chunk
    cdef char* p
    if not PyBytes_CheckExact(data):
        if not data:
            return b""
        return b"%x\r\n%s\r\n" % (len(data), data)
    n = PyBytes_GET_SIZE(data)
    if n == 0:
        return _EMPTY
    digits = 0
    i = n
    while i:
        digits += 1
        i >>= 4
    chunk = PyBytes_FromStringAndSize(NULL, digits + n + 4)
    p = PyBytes_AS_STRING(chunk)
    i = n
    while digits:
        digits -= 1
        p[digits] = _HEXDIGITS[i & 15]
        i >>= 4
    p += PyBytes_GET_SIZE(chunk) - n - 4
    p[0] = CR
    p[1] = LF
    memcpy(p + 2, PyBytes_AS_STRING(data), n)
    p[n + 2] = CR
    p[n + 3] = LF
    return chunk


def encode_trailers(trailers):
    """The last chunk with a trailer section (RFC 9112 7.1.2)."""
    cdef char stack[512]
    cdef _Out out
    _out_start(&out, stack, sizeof(stack))
    try:
        _put(&out, b"0\r\n", 3)
        _put_fields(&out, trailers, "trailer name", "trailer value")
        _put(&out, b"\r\n", 2)
        return PyBytes_FromStringAndSize(out.data, out.size)
    finally:
        if out.heap:
            free(out.data)


def encode_error(status, message="", keep_alive=False, http11=True, server=b"fastbase"):
    """A complete plain-text response for protocol errors and server
    failures; it closes the connection unless ``keep_alive`` (an
    application's failure the connection survives: ``http11`` False then
    answers an HTTP/1.0 client with "Connection: keep-alive"). ``server``
    is the Server field's value, None for none (--no-server-header)."""
    body = ((message or REASONS.get(status, "Error")) + "\n").encode("utf-8", "replace")
    head, _, _, _ = encode_head(
        status,
        [(b"content-type", b"text/plain; charset=utf-8")],
        http11=http11,
        keep_alive=keep_alive,
        body_length=len(body),
        server=server,
    )
    return head + body
