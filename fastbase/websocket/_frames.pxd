# Declarations of the compiled WebSocket frame layer (logic lives in _frames.pyx).

cdef class Message:
    cdef readonly int opcode
    cdef readonly object data


cdef class Ping:
    cdef readonly bytes payload


cdef class Pong:
    cdef readonly bytes payload


cdef class Close:
    cdef readonly int code
    cdef readonly str reason


cdef class FrameParser:
    cdef public long long max_message_size
    cdef public object deflate

    cdef int _state
    cdef object _error

    # A header split across feed calls: its first _head_len bytes.
    cdef unsigned char _head[14]
    cdef Py_ssize_t _head_len

    # The frame being read.
    cdef bint _fin
    cdef int _opcode
    cdef unsigned char _mask[4]
    cdef unsigned long long _remaining
    cdef unsigned int _phase
    cdef unsigned char _control[125]
    cdef Py_ssize_t _control_len

    # The data message being reassembled (opcode 0: none is open): its
    # payload so far in _mbuf[:_mlen] (unmasked, inflated), and the UTF-8
    # validator's state for a text message.
    cdef int _message_opcode
    cdef bint _compressed
    cdef long long _wire
    cdef long long _size
    cdef unsigned char* _mbuf
    cdef Py_ssize_t _mlen
    cdef Py_ssize_t _mcap
    cdef int _utf8
    # Inflated bytes of a compressed text message are checked as UTF-8 when
    # their frame ends: _mbuf[:_checked] has been.
    cdef Py_ssize_t _checked

    cdef int _run(self, const unsigned char* p, Py_ssize_t n, list events) except -1
    cdef Py_ssize_t _header(self, const unsigned char* h, Py_ssize_t avail) except -1
    cdef object _whole_message(self, const unsigned char* p, Py_ssize_t n)
    cdef int _payload(self, const unsigned char* p, Py_ssize_t n) except -1
    cdef int _reserve(self, Py_ssize_t extra) except -1
    cdef int _append(self, object data) except -1
    cdef int _check_utf8(self, const unsigned char* p, Py_ssize_t n) except -1
    cdef int _check_inflated(self) except -1
    cdef long long _room(self) noexcept
    cdef int _end_frame(self, list events) except -1
    cdef object _end_message(self)
    cdef object _close_event(self)
    cdef void _reset_message(self) noexcept
