# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The compiled WebSocket frame parser and writers (RFC 6455, RFC 7692).

The fast copy of ``_frames_py.py``, which is the readable spec (and
documents the API): same public API, same events, same errors and reasons
for the same bytes however they are split into ``feed`` calls. Each protocol
rule quotes its RFC clause in short form; the twin carries the longer
quotations.

Where the speed comes from: unmasking XORs 16 bytes at a time (SSE2) or 8
(a 64-bit word), straight from the caller's buffer into the message's bytes
object; a frame that arrives whole and is a whole message (the common case)
becomes its event without any intermediate buffer; text is validated as
UTF-8 by a C state machine with an ASCII fast path as its bytes arrive
(fail-fast), and decoded once; the events are C-level classes. Inflating is
zlib's work, done through the shared ``deflate.Deflate``.
"""

cimport cython
from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytes cimport (
    PyBytes_AS_STRING,
    PyBytes_CheckExact,
    PyBytes_FromStringAndSize,
    PyBytes_GET_SIZE,
)
from cpython.long cimport PyLong_Check
from cpython.unicode cimport PyUnicode_Check, PyUnicode_DecodeUTF8
from libc.stdlib cimport free, realloc
from libc.string cimport memcpy

from fastbase.websocket import limits
from fastbase.websocket.errors import WebSocketProtocolError, is_valid_close_code

__all__ = [
    "FrameParser",
    "Message",
    "Ping",
    "Pong",
    "Close",
    "encode_frame",
    "encode_text",
    "encode_binary",
    "encode_ping",
    "encode_pong",
    "encode_close",
    "CONTINUATION",
    "TEXT",
    "BINARY",
    "CLOSE",
    "PING",
    "PONG",
]


cdef extern from "Python.h":
    const char* PyUnicode_AsUTF8AndSize(object unicode, Py_ssize_t* size) except NULL


cdef extern from *:
    """
    #include <string.h>
    #include <stdint.h>
    #if defined(__SSE2__) || defined(_M_X64) || (defined(_M_IX86_FP) && _M_IX86_FP >= 2)
    #include <emmintrin.h>
    #define FBW_SSE2 1
    #endif

    /* dst[i] = src[i] ^ key[(phase + i) % 4] (RFC 6455 5.3); dst may be src.
       The key is rotated by the phase once, so every word the loops XOR
       starts at a multiple of 4 and sees the key in order. */
    static void fbw_unmask(unsigned char *dst, const unsigned char *src, Py_ssize_t n,
                           const unsigned char *key, unsigned int phase) {
        unsigned char k[4];
        uint32_t k32;
        uint64_t k64;
        Py_ssize_t i = 0;
        k[0] = key[phase & 3];
        k[1] = key[(phase + 1) & 3];
        k[2] = key[(phase + 2) & 3];
        k[3] = key[(phase + 3) & 3];
        memcpy(&k32, k, 4);
        k64 = ((uint64_t)k32 << 32) | k32;
    #ifdef FBW_SSE2
        if (n >= 16) {
            __m128i m = _mm_set1_epi32((int)k32);
            for (; i + 64 <= n; i += 64) {
                __m128i a = _mm_loadu_si128((const __m128i *)(src + i));
                __m128i b = _mm_loadu_si128((const __m128i *)(src + i + 16));
                __m128i c = _mm_loadu_si128((const __m128i *)(src + i + 32));
                __m128i d = _mm_loadu_si128((const __m128i *)(src + i + 48));
                _mm_storeu_si128((__m128i *)(dst + i), _mm_xor_si128(a, m));
                _mm_storeu_si128((__m128i *)(dst + i + 16), _mm_xor_si128(b, m));
                _mm_storeu_si128((__m128i *)(dst + i + 32), _mm_xor_si128(c, m));
                _mm_storeu_si128((__m128i *)(dst + i + 48), _mm_xor_si128(d, m));
            }
            for (; i + 16 <= n; i += 16) {
                __m128i a = _mm_loadu_si128((const __m128i *)(src + i));
                _mm_storeu_si128((__m128i *)(dst + i), _mm_xor_si128(a, m));
            }
        }
    #endif
        for (; i + 8 <= n; i += 8) {
            uint64_t w;
            memcpy(&w, src + i, 8);
            w ^= k64;
            memcpy(dst + i, &w, 8);
        }
        for (; i < n; i++)
            dst[i] = src[i] ^ k[i & 3];
    }

    /* Incremental UTF-8 validation (RFC 3629 section 4's UTF8-octets), failing
       at the first byte that no valid sequence can continue with. The state
       packs the continuation bytes still needed (bits 16-17) and the range the
       next one must fall in (lo: bits 8-15, hi: bits 0-7); 0 to begin.
       Returns the new state, or -1. */
    static int fbw_utf8(const unsigned char *s, Py_ssize_t n, int state) {
        int need = state >> 16, lo = (state >> 8) & 0xFF, hi = state & 0xFF;
        Py_ssize_t i = 0;
        while (i < n) {
            unsigned char c = s[i];
            if (need) {
                if (c < lo || c > hi)
                    return -1;
                need--;
                lo = 0x80;
                hi = 0xBF;
                i++;
                continue;
            }
            if (c < 0x80) {
                i++;
                while (i + 8 <= n) {
                    uint64_t w;
                    memcpy(&w, s + i, 8);
                    if (w & 0x8080808080808080ULL)
                        break;
                    i += 8;
                }
                continue;
            }
            if (c >= 0xC2 && c <= 0xDF) { need = 1; lo = 0x80; hi = 0xBF; }
            else if (c == 0xE0) { need = 2; lo = 0xA0; hi = 0xBF; }      /* no overlongs */
            else if (c == 0xED) { need = 2; lo = 0x80; hi = 0x9F; }      /* no surrogates */
            else if (c >= 0xE1 && c <= 0xEF) { need = 2; lo = 0x80; hi = 0xBF; }
            else if (c == 0xF0) { need = 3; lo = 0x90; hi = 0xBF; }      /* no overlongs */
            else if (c >= 0xF1 && c <= 0xF3) { need = 3; lo = 0x80; hi = 0xBF; }
            else if (c == 0xF4) { need = 3; lo = 0x80; hi = 0x8F; }      /* <= U+10FFFF */
            else return -1;
            i++;
        }
        return (need << 16) | (lo << 8) | hi;
    }
    """
    void fbw_unmask(unsigned char* dst, const unsigned char* src, Py_ssize_t n,
                    const unsigned char* key, unsigned int phase) noexcept nogil
    int fbw_utf8(const unsigned char* s, Py_ssize_t n, int state) noexcept nogil


ctypedef const unsigned char* cptr

# RFC 6455 5.2 opcodes.
cdef enum:
    OP_CONTINUATION = 0x0
    OP_TEXT = 0x1
    OP_BINARY = 0x2
    OP_CLOSE = 0x8
    OP_PING = 0x9
    OP_PONG = 0xA

CONTINUATION = OP_CONTINUATION
TEXT = OP_TEXT
BINARY = OP_BINARY
CLOSE = OP_CLOSE
PING = OP_PING
PONG = OP_PONG

cdef enum:
    # RFC 6455 5.5: control frame payloads are 125 bytes or less.
    MAX_CONTROL_PAYLOAD = 125
    # A text frame whole in one feed and at most this long is unmasked on the stack.
    STACK_TEXT = 512
    # A message buffer grown past this is freed once its message is delivered,
    # so one large message does not pin memory for the connection's lifetime.
    KEEP_BUFFER = 65536

# Parser states.
cdef enum:
    S_HEADER = 0  # reading a frame header
    S_PAYLOAD = 1  # reading a frame's payload
    S_CLOSED = 2  # a Close frame arrived: further bytes are ignored
    S_ERROR = 3


cdef inline bint _known_opcode(int opcode) noexcept nogil:
    return 0 <= opcode <= OP_BINARY or OP_CLOSE <= opcode <= OP_PONG


cdef inline object _protocol_error(str reason):
    return WebSocketProtocolError(1002, reason)


cdef class Message:
    """A whole data message: ``opcode`` TEXT with ``data`` str, or BINARY with bytes."""

    def __init__(self, int opcode, object data):
        self.opcode = opcode
        self.data = data

    def __repr__(self):
        kind = "TEXT" if self.opcode == OP_TEXT else "BINARY"
        return f"<Message {kind} {self.data[:40]!r}{'...' if len(self.data) > 40 else ''}>"


cdef class Ping:
    """A Ping control frame; answer it with a Pong carrying the same payload."""

    def __init__(self, bytes payload):
        self.payload = payload

    def __repr__(self):
        return f"<Ping {self.payload!r}>"


cdef class Pong:
    """A Pong control frame (an answer to a ping, or unsolicited)."""

    def __init__(self, bytes payload):
        self.payload = payload

    def __repr__(self):
        return f"<Pong {self.payload!r}>"


cdef class Close:
    """The client's Close frame: ``code`` (1005 when none was sent) and ``reason``."""

    def __init__(self, int code, str reason):
        self.code = code
        self.reason = reason

    def __repr__(self):
        return f"<Close {self.code} {self.reason!r}>"


cdef inline Message _message(int opcode, object data):
    cdef Message message = Message.__new__(Message)
    message.opcode = opcode
    message.data = data
    return message


cdef class FrameParser:
    """Incremental, strict parser of the frames a client sends; one per connection."""

    def __init__(self, *, max_message_size=limits.MAX_MESSAGE_SIZE, deflate=None):
        if max_message_size is not None and not PyLong_Check(max_message_size):
            raise TypeError(f"max_message_size must be an int or None, not {type(max_message_size).__name__}")
        if max_message_size is not None and max_message_size < 0:
            raise ValueError("max_message_size must be >= 0 or None")
        self.max_message_size = -1 if max_message_size is None else max_message_size
        self.deflate = deflate
        self._state = S_HEADER
        self._error = None
        self._head_len = 0
        self._remaining = 0
        self._control_len = 0
        self._mbuf = NULL
        self._mlen = 0
        self._mcap = 0
        self._reset_message()

    def __dealloc__(self):
        free(self._mbuf)

    @property
    def closed(self):
        """A Close frame has arrived; bytes after it are ignored."""
        return self._state == S_CLOSED

    @property
    def in_message(self):
        """A data message has begun (its first frame's header arrived) and not ended yet."""
        return self._message_opcode != 0

    def feed(self, data):
        cdef Py_buffer view
        cdef list events
        if self._state == S_ERROR:
            raise WebSocketProtocolError(self._error.code, self._error.reason)
        if self._state == S_CLOSED:
            return []
        events = []
        try:
            if PyBytes_CheckExact(data):
                self._run(<cptr>PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data), events)
            else:
                PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
                try:
                    self._run(<cptr>view.buf, view.len, events)
                finally:
                    PyBuffer_Release(&view)
        except WebSocketProtocolError as exc:
            self._state = S_ERROR
            self._error = exc
            self._head_len = 0
            self._reset_message()
            exc.events = events
            raise
        return events

    # --- the state machine --------------------------------------------------------

    cdef int _run(self, cptr p, Py_ssize_t n, list events) except -1:
        cdef Py_ssize_t pos = 0
        cdef Py_ssize_t used, take, carried
        while True:
            if self._state == S_HEADER:
                if self._head_len:
                    # Complete a header that began in an earlier call.
                    carried = self._head_len
                    take = min(<Py_ssize_t>14 - carried, n - pos)
                    memcpy(self._head + carried, p + pos, take)
                    used = self._header(self._head, carried + take)
                    if not used:
                        self._head_len = carried + take
                        return 0
                    self._head_len = 0
                    pos += used - carried
                else:
                    if pos == n:
                        return 0
                    used = self._header(p + pos, n - pos)
                    if not used:
                        memcpy(self._head, p + pos, n - pos)
                        self._head_len = n - pos
                        return 0
                    pos += used
                    # The common case: a whole unfragmented, uncompressed
                    # message in this call becomes its event directly.
                    # Fast-path copy of the S_PAYLOAD branch + _payload +
                    # _end_frame (FrameParser); keep in step (the frames fed
                    # byte by byte run the slow path).
                    if (self._fin and (self._opcode == OP_TEXT or self._opcode == OP_BINARY)
                            and not self._compressed and self._remaining <= <unsigned long long>(n - pos)):
                        take = <Py_ssize_t>self._remaining
                        events.append(self._whole_message(p + pos, take))
                        pos += take
                        self._remaining = 0
                        self._state = S_HEADER
                        self._reset_message()
                        continue
                if self._remaining == 0:
                    self._end_frame(events)
            elif self._state == S_PAYLOAD:
                if pos == n:
                    return 0
                take = n - pos
                if <unsigned long long>take > self._remaining:
                    take = <Py_ssize_t>self._remaining
                self._payload(p + pos, take)
                pos += take
                self._remaining -= take
                self._phase = (self._phase + <unsigned int>take) & 3
                if self._remaining == 0:
                    self._end_frame(events)
            else:  # S_CLOSED: the rest is ignored
                return 0

    cdef Py_ssize_t _header(self, cptr h, Py_ssize_t avail) except -1:
        """Check the header at h[:avail] as far as it has arrived; return its
        size once it is complete (the frame is then begun), else 0."""
        cdef int b0, b1, opcode
        cdef bint fin, rsv1, control
        cdef Py_ssize_t extended, header_size, i
        cdef unsigned long long length
        cdef long long wire
        if avail < 1:
            return 0
        b0 = h[0]
        fin = (b0 & 0x80) != 0
        rsv1 = (b0 & 0x40) != 0
        opcode = b0 & 0x0F
        # 5.2: "If an unknown opcode is received, the receiving endpoint MUST
        # _Fail the WebSocket Connection_."
        if not _known_opcode(opcode):
            raise _protocol_error("reserved opcode")
        control = opcode >= OP_CLOSE
        # 5.2: RSV1-3 "MUST be 0 unless an extension is negotiated".
        if b0 & 0x30:
            raise _protocol_error("reserved bits RSV2/RSV3 set")
        if rsv1:
            if self.deflate is None:
                raise _protocol_error("RSV1 set without a negotiated extension")
            # RFC 7692 6.1: not on control frames nor non-first fragments.
            if control:
                raise _protocol_error("RSV1 set on a control frame")
            if opcode == OP_CONTINUATION:
                raise _protocol_error("RSV1 set on a continuation frame")
        # 5.5: control frames "MUST NOT be fragmented".
        if control and not fin:
            raise _protocol_error("fragmented control frame")
        # 5.4: fragments continue an open message; control frames may interleave.
        if opcode == OP_CONTINUATION and not self._message_opcode:
            raise _protocol_error("continuation frame without a message to continue")
        if (opcode == OP_TEXT or opcode == OP_BINARY) and self._message_opcode:
            raise _protocol_error("new data frame while a fragmented message is open")
        if avail < 2:
            return 0
        b1 = h[1]
        # 5.1: "The server MUST close the connection upon receiving a frame
        # that is not masked."
        if not b1 & 0x80:
            raise _protocol_error("client frame is not masked")
        length = b1 & 0x7F
        if control and length > MAX_CONTROL_PAYLOAD:
            raise _protocol_error("control frame payload over 125 bytes")
        # 5.2: 7, 7+16 or 7+64 bits, the MSB 0, the minimal encoding.
        extended = 2 if length == 126 else (8 if length == 127 else 0)
        if avail < 2 + extended:
            return 0
        if extended:
            length = 0
            for i in range(extended):
                length = (length << 8) | h[2 + i]
            if length >> 63:
                raise _protocol_error("payload length with the most significant bit set")
            if length < (126 if extended == 2 else 65536):
                raise _protocol_error("payload length not in its minimal encoding")
        # 10.4 / 7.4.1 (1009): refused on the declared length, before any of it
        # is buffered; a compressed message is also bounded as it inflates.
        if not control and self.max_message_size >= 0:
            wire = self._wire if opcode == OP_CONTINUATION else 0
            if length > <unsigned long long>(self.max_message_size - wire):
                raise WebSocketProtocolError(1009, "message too big")
        header_size = 2 + extended + 4
        if avail < header_size:
            return 0
        # The header is complete: begin the frame.
        self._fin = fin
        self._opcode = opcode
        memcpy(self._mask, h + 2 + extended, 4)
        self._remaining = length
        self._phase = 0
        if control:
            self._control_len = 0
        elif opcode == OP_CONTINUATION:
            self._wire += <long long>length
        else:
            self._message_opcode = opcode
            self._compressed = rsv1
            self._wire = <long long>length
            self._size = 0
            self._mlen = 0
            self._utf8 = 0
        self._state = S_PAYLOAD
        return header_size

    cdef object _whole_message(self, cptr p, Py_ssize_t n):
        """The event of a whole message that is one frame, all in the input."""
        cdef unsigned char stack[STACK_TEXT]
        cdef unsigned char* buf
        cdef object data
        if self._opcode == OP_BINARY:
            data = PyBytes_FromStringAndSize(NULL, n)
            fbw_unmask(<unsigned char*>PyBytes_AS_STRING(data), p, n, self._mask, 0)
            return _message(OP_BINARY, data)
        if n <= STACK_TEXT:
            buf = stack
        else:
            self._reserve(n)
            buf = self._mbuf
        fbw_unmask(buf, p, n, self._mask, 0)
        try:
            data = PyUnicode_DecodeUTF8(<char*>buf, n, NULL)
        except UnicodeDecodeError:
            # 8.1: invalid UTF-8 fails the connection with 1007 (the same
            # reasons as the byte-by-byte path gives).
            if fbw_utf8(buf, n, 0) < 0:
                raise WebSocketProtocolError(1007, "invalid UTF-8 in a text message") from None
            raise WebSocketProtocolError(1007, "text message ends inside a UTF-8 sequence") from None
        return _message(OP_TEXT, data)

    cdef int _payload(self, cptr p, Py_ssize_t n) except -1:
        """Take the next n payload bytes of the current frame."""
        cdef object chunk
        if self._opcode >= OP_CLOSE:
            fbw_unmask(self._control + self._control_len, p, n, self._mask, self._phase)
            self._control_len += n
        elif self._compressed:
            chunk = PyBytes_FromStringAndSize(NULL, n)
            fbw_unmask(<unsigned char*>PyBytes_AS_STRING(chunk), p, n, self._mask, self._phase)
            self._append(self.deflate.inflate(chunk, self._room()))
        else:
            self._reserve(n)
            fbw_unmask(self._mbuf + self._mlen, p, n, self._mask, self._phase)
            if self._message_opcode == OP_TEXT:
                self._check_utf8(self._mbuf + self._mlen, n)
            self._mlen += n
            self._size += n
        return 0

    cdef int _reserve(self, Py_ssize_t extra) except -1:
        """Room for ``extra`` more bytes in the message buffer, grown as bytes
        arrive (never to a declared length that may not come)."""
        cdef Py_ssize_t need = self._mlen + extra
        cdef Py_ssize_t cap
        cdef unsigned char* grown
        if need <= self._mcap:
            return 0
        cap = self._mcap * 2 if self._mcap else 4096
        if cap < need:
            cap = need
        grown = <unsigned char*>realloc(self._mbuf, cap)
        if grown == NULL:
            raise MemoryError()
        self._mbuf = grown
        self._mcap = cap
        return 0

    cdef int _append(self, object data) except -1:
        """Append inflated bytes to the open message (checked as UTF-8 by
        _check_inflated, when their frame ends)."""
        cdef Py_ssize_t n = PyBytes_GET_SIZE(data)
        if not n:
            return 0
        self._reserve(n)
        memcpy(self._mbuf + self._mlen, PyBytes_AS_STRING(data), n)
        self._mlen += n
        self._size += n
        return 0

    cdef int _check_inflated(self) except -1:
        # A compressed frame's text is checked once the frame is inflated
        # whole: checked piece by piece, invalid deflate data later in the
        # frame would lose to a UTF-8 error or not depending on how the
        # bytes happened to be split across reads.
        if self._message_opcode == OP_TEXT and self._mlen > self._checked:
            self._check_utf8(self._mbuf + self._checked, self._mlen - self._checked)
        self._checked = self._mlen
        return 0

    cdef int _check_utf8(self, cptr p, Py_ssize_t n) except -1:
        # 8.1: "When an endpoint is to interpret a byte stream as UTF-8 but
        # finds that the byte stream is not, in fact, a valid UTF-8 stream,
        # that endpoint MUST _Fail the WebSocket Connection_." At once.
        self._utf8 = fbw_utf8(p, n, self._utf8)
        if self._utf8 < 0:
            raise WebSocketProtocolError(1007, "invalid UTF-8 in a text message")
        return 0

    cdef long long _room(self) noexcept:
        if self.max_message_size < 0:
            return -1
        return self.max_message_size - self._size

    cdef int _end_frame(self, list events) except -1:
        # Inlined (with _payload) in _run's whole-message fast path
        # (_whole_message) for speed.
        cdef int opcode = self._opcode
        self._state = S_HEADER
        if opcode == OP_PING:
            events.append(Ping(PyBytes_FromStringAndSize(<char*>self._control, self._control_len)))
        elif opcode == OP_PONG:
            events.append(Pong(PyBytes_FromStringAndSize(<char*>self._control, self._control_len)))
        elif opcode == OP_CLOSE:
            events.append(self._close_event())
            # 5.5.1: no data frames after a Close; an open message is abandoned.
            self._state = S_CLOSED
            self._reset_message()
        else:
            if self._compressed:
                self._check_inflated()
            if self._fin:
                events.append(self._end_message())
        return 0

    cdef object _end_message(self):
        cdef int opcode = self._message_opcode
        cdef object data
        if self._compressed:
            self._append(self.deflate.inflate_end(self._room()))
            self._check_inflated()
        if opcode == OP_TEXT:
            if self._utf8 >> 16:
                raise WebSocketProtocolError(1007, "text message ends inside a UTF-8 sequence")
            data = PyUnicode_DecodeUTF8(<char*>self._mbuf, self._mlen, NULL)
        else:
            data = PyBytes_FromStringAndSize(<char*>self._mbuf, self._mlen)
        self._reset_message()
        return _message(opcode, data)

    cdef object _close_event(self):
        # 5.5.1: an empty body, or a 2-byte status code then a UTF-8 reason;
        # 7.1.5: no status code means 1005.
        cdef int code
        cdef object reason
        if self._control_len == 0:
            return Close(1005, "")
        if self._control_len == 1:
            raise _protocol_error("close frame payload of 1 byte")
        code = (self._control[0] << 8) | self._control[1]
        if not is_valid_close_code(code):
            raise _protocol_error("invalid close code")
        try:
            reason = PyUnicode_DecodeUTF8(<char*>self._control + 2, self._control_len - 2, NULL)
        except UnicodeDecodeError:
            raise WebSocketProtocolError(1007, "close reason is not valid UTF-8") from None
        return Close(code, reason)

    cdef void _reset_message(self) noexcept:
        self._message_opcode = 0
        self._compressed = False
        self._wire = 0
        self._size = 0
        self._mlen = 0
        self._utf8 = 0
        self._checked = 0
        if self._mcap > KEEP_BUFFER:
            free(self._mbuf)
            self._mbuf = NULL
            self._mcap = 0


# --- writing ------------------------------------------------------------------------


cdef bytes _frame(int b0, cptr payload, Py_ssize_t n):
    """Header and payload in one bytes object (5.2's minimal length encoding)."""
    cdef Py_ssize_t head = 2 if n < 126 else (4 if n < 65536 else 10)
    cdef bytes out = PyBytes_FromStringAndSize(NULL, head + n)
    cdef unsigned char* o = <unsigned char*>PyBytes_AS_STRING(out)
    cdef unsigned long long length = <unsigned long long>n
    cdef int i
    o[0] = <unsigned char>b0
    if head == 2:
        o[1] = <unsigned char>n
    elif head == 4:
        o[1] = 126
        o[2] = <unsigned char>(n >> 8)
        o[3] = <unsigned char>n
    else:
        o[1] = 127
        for i in range(8):
            o[9 - i] = <unsigned char>(length & 0xFF)
            length >>= 8
    if n:
        memcpy(o + head, payload, n)
    return out


cdef bytes _encode(int opcode, object payload, bint fin, bint rsv1):
    cdef Py_buffer view
    cdef int b0
    if not _known_opcode(opcode):
        raise ValueError(f"unknown opcode {opcode!r}")
    b0 = (0x80 if fin else 0) | (0x40 if rsv1 else 0) | opcode
    if PyBytes_CheckExact(payload):
        return _check_and_frame(opcode, fin, rsv1, b0, <cptr>PyBytes_AS_STRING(payload), PyBytes_GET_SIZE(payload))
    PyObject_GetBuffer(payload, &view, PyBUF_SIMPLE)
    try:
        return _check_and_frame(opcode, fin, rsv1, b0, <cptr>view.buf, view.len)
    finally:
        PyBuffer_Release(&view)


cdef bytes _check_and_frame(int opcode, bint fin, bint rsv1, int b0, cptr p, Py_ssize_t n):
    if opcode >= OP_CLOSE:
        if n > MAX_CONTROL_PAYLOAD:
            raise ValueError("control frame payload over 125 bytes")
        if not fin:
            raise ValueError("control frames cannot be fragmented")
    if rsv1 and opcode != OP_TEXT and opcode != OP_BINARY:
        raise ValueError("RSV1 is only set on the first frame of a data message")
    return _frame(b0, p, n)


def encode_frame(opcode, payload=b"", bint fin=True, bint rsv1=False):
    """One unmasked frame (5.1: "A server MUST NOT mask any frames")."""
    # An int, checked before it becomes a C int: a float would be truncated,
    # a huge int would overflow, and neither is an opcode (as in the twin).
    if not PyLong_Check(opcode):
        raise TypeError(f"an opcode is an int, not {type(opcode).__name__}")
    if not 0 <= opcode <= 0xF:
        raise ValueError(f"unknown opcode {opcode!r}")
    return _encode(opcode, payload, fin, rsv1)


def encode_text(data, deflate=None):
    """A text message in one frame, compressed when ``deflate`` is given."""
    cdef Py_ssize_t n
    cdef const char* utf8
    if not PyUnicode_Check(data):
        raise TypeError("text messages are str")
    if deflate is not None:
        return _encode(OP_TEXT, deflate.compress(data.encode("utf-8")), True, True)
    utf8 = PyUnicode_AsUTF8AndSize(data, &n)
    return _frame(0x80 | OP_TEXT, <cptr>utf8, n)


def encode_binary(data, deflate=None):
    """A binary message in one frame, compressed when ``deflate`` is given."""
    if PyUnicode_Check(data):
        raise TypeError("binary messages are bytes")
    if deflate is not None:
        return _encode(OP_BINARY, deflate.compress(data), True, True)
    return _encode(OP_BINARY, data, True, False)


def encode_ping(payload=b""):
    return _encode(OP_PING, payload, True, False)


def encode_pong(payload=b""):
    return _encode(OP_PONG, payload, True, False)


def encode_close(code=1000, str reason not None=""):
    """A Close frame; ``code=None`` sends none (and then no reason either)."""
    if code is None:
        if reason:
            raise ValueError("a close reason needs a close code")
        return _frame(0x80 | OP_CLOSE, NULL, 0)
    if not PyLong_Check(code):
        raise TypeError(f"a close code is an int or None, not {type(code).__name__}")
    # 7.4.1: 1005, 1006 and 1015 are never sent.
    if not is_valid_close_code(code):
        raise ValueError(f"invalid close code {code!r}")
    payload = int(code).to_bytes(2, "big") + reason.encode("utf-8")
    if len(payload) > MAX_CONTROL_PAYLOAD:
        raise ValueError("close reason over 123 bytes")
    return _frame(0x80 | OP_CLOSE, <cptr>PyBytes_AS_STRING(payload), PyBytes_GET_SIZE(payload))
