# Declarations of the compiled parser (logic lives in _parser.pyx).

cdef class Request:
    cdef readonly object method
    cdef readonly object target
    cdef readonly object path
    cdef readonly object query
    cdef readonly object http_version
    cdef readonly list headers
    cdef readonly object host
    cdef readonly bint keep_alive
    cdef readonly bint chunked
    cdef readonly object content_length
    cdef readonly bint expect_continue
    cdef readonly object upgrade


cdef class EndOfMessage:
    cdef readonly object trailers


cdef class RequestParser:
    cdef public Py_ssize_t max_request_line
    cdef public Py_ssize_t max_field_size
    cdef public Py_ssize_t max_header_size
    cdef public Py_ssize_t max_fields
    cdef public Py_ssize_t max_chunk_extensions
    cdef public long long max_body_size

    # Bytes of an incomplete line or of a paused connection: buf[start:start+len].
    cdef unsigned char* _buf
    cdef Py_ssize_t _bstart
    cdef Py_ssize_t _blen
    cdef Py_ssize_t _bcap

    cdef int _state
    cdef object _error

    # The message being parsed.
    cdef bint _leading_crlf_seen
    cdef Request _request
    cdef list _fields
    cdef Py_ssize_t _nfields
    cdef Py_ssize_t _section_size
    cdef long long _remaining
    cdef long long _body_size
    cdef bint _http11
    cdef bint _upgrade_pending
    cdef bint _keep_alive

    # Facts about the framing fields, gathered while the head is read and
    # judged once it is complete (in the twin's order).
    cdef int _n_host
    cdef object _host
    cdef int _n_content_length
    cdef object _content_length
    cdef Py_ssize_t _te_items
    cdef Py_ssize_t _te_chunked
    cdef bint _te_empty
    cdef bint _te_last_chunked
    cdef bint _conn_close
    cdef bint _conn_keep_alive
    cdef bint _conn_upgrade
    cdef object _upgrade
    cdef bint _expect_continue

    cdef void _reset_message(self) noexcept
    cdef int _buffer_append(self, const unsigned char* data, Py_ssize_t n) except -1
    cdef void _buffer_clear(self) noexcept
    cdef list _feed(self, const unsigned char* data, Py_ssize_t n, object src)
    cdef Py_ssize_t _run(self, const unsigned char* buf, Py_ssize_t n, object src, list events) except -1
    cdef int _check_method_prefix(self, const unsigned char* p, Py_ssize_t avail) except -1
    cdef Py_ssize_t _take_line(self, const unsigned char* p, Py_ssize_t avail, Py_ssize_t limit,
                               int kind, Py_ssize_t section) except -2
    cdef int _too_long(self, int kind) except -1
    cdef int _parse_request_line(self, const unsigned char* line, Py_ssize_t size) except -1
    cdef int _start_request(self, const unsigned char* method, Py_ssize_t mlen,
                            const unsigned char* target, Py_ssize_t tlen, bint http11) except -1
    cdef int _parse_field(self, const unsigned char* line, Py_ssize_t size) except -1
    cdef int _add_field(self, const unsigned char* name, Py_ssize_t nlen,
                        const unsigned char* value, Py_ssize_t vlen) except -1
    cdef int _finish_head(self, list events) except -1
    cdef int _parse_chunk_size(self, const unsigned char* line, Py_ssize_t size) except -1
    cdef int _end_message(self, list events, object end) except -1
