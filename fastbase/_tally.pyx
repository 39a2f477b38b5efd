# cython: language_level=3, binding=False
"""The per-response counts of ``--metrics``, in C: the compiled copy of
``fastbase._tally_py`` (the readable spec; same API, same counts).

``Tally.record`` is the access-log callback the bridges call once per
response while ``--metrics`` is on. As a Python closure its body cost about
60% of what ``--metrics`` added to a hello-world ASGI request (a dict
lookup, a bisect call, three list items read and written back, a float
added); here it is a few dozen machine instructions on C counters.

No lock and no row per thread: ``record`` holds the GIL from its first line
to its last, and between reading its arguments and calling the access log
it calls no Python code, so two threads (the WSGI pool's) never interleave
inside the counting. (The twin's increments are several bytecodes each, so
it keeps a row per thread instead.)

``binding=False``: ``tally.record`` is then a built-in method, called by
vectorcall with no bound-method object in between.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from cpython.mem cimport PyMem_Calloc, PyMem_Free
from libc.string cimport memcmp

from fastbase.http._parser cimport Request

#: Columns per method: the status divided by 100 (0: no response was sent).
STATUS_COLUMNS = 10
cdef Py_ssize_t _COLUMNS = STATUS_COLUMNS


cdef class Tally:
    """Responses by method and status class, a histogram of their durations
    and the durations' sum, and the 101s (WebSocket sessions accepted)."""

    cdef tuple _methods
    cdef Py_ssize_t _n_methods
    cdef double* _bounds
    cdef Py_ssize_t _n_bounds
    # One row of _COLUMNS per method, then one for every other method.
    cdef unsigned long long* _requests
    # One bucket per bound (durations up to it), then one above them all.
    cdef unsigned long long* _buckets
    cdef double _sum
    cdef unsigned long long _upgrades
    cdef object _log

    def __cinit__(self, methods, bounds, log=None):
        cdef Py_ssize_t i
        self._methods = tuple(methods)
        for method in self._methods:
            if type(method) is not bytes:
                raise TypeError(f"methods must be bytes, got {method!r}")
        self._n_methods = len(self._methods)
        bounds = tuple(bounds)
        self._n_bounds = len(bounds)
        self._bounds = <double*>PyMem_Calloc(self._n_bounds + 1, sizeof(double))
        self._requests = <unsigned long long*>PyMem_Calloc((self._n_methods + 1) * _COLUMNS, sizeof(unsigned long long))
        self._buckets = <unsigned long long*>PyMem_Calloc(self._n_bounds + 1, sizeof(unsigned long long))
        if self._bounds == NULL or self._requests == NULL or self._buckets == NULL:
            raise MemoryError()
        for i in range(self._n_bounds):
            self._bounds[i] = bounds[i]
            if i and not self._bounds[i] > self._bounds[i - 1]:
                raise ValueError(f"bounds must increase, got {bounds!r}")
        self._log = log

    def __dealloc__(self):
        PyMem_Free(self._bounds)
        PyMem_Free(self._requests)
        PyMem_Free(self._buckets)

    def record(self, protocol, request, long status, size, double seconds, headers=None):
        """Count one response, then hand it to the access log if there is
        one. ``request`` None (a head the parser rejected) is not counted:
        the connection counts rejections."""
        cdef object method
        cdef const char* name
        cdef Py_ssize_t length, row, low, high, middle
        if request is not None:
            # (A direct read from the compiled parser's requests: a getattr
            # takes about as many instructions as all the counting below.)
            method = (<Request>request).method if type(request) is Request else request.method
            # Nothing below calls Python code until the log.
            row = 0
            if type(method) is bytes:
                name = PyBytes_AS_STRING(method)
                length = PyBytes_GET_SIZE(method)
                while row < self._n_methods:
                    known = <bytes>self._methods[row]
                    if PyBytes_GET_SIZE(known) == length and memcmp(PyBytes_AS_STRING(known), name, length) == 0:
                        break
                    row += 1
            else:
                row = self._n_methods
            self._requests[row * _COLUMNS + (status // 100 if 0 <= status < 1000 else 0)] += 1
            # The first bound not below the duration (bisect_left).
            low = 0
            high = self._n_bounds
            while low < high:
                middle = (low + high) >> 1
                if self._bounds[middle] < seconds:
                    low = middle + 1
                else:
                    high = middle
            self._buckets[low] += 1
            self._sum += seconds
            if status == 101:
                self._upgrades += 1
        if self._log is not None:
            self._log(protocol, request, status, size, seconds, headers)

    def counts(self):
        """``(requests, buckets, duration_sum, upgrades)``: ``requests`` one
        row of ``STATUS_COLUMNS`` per method, then one for the other
        methods, in one list; ``buckets`` one per bound, then the one above
        them all (not cumulative)."""
        cdef Py_ssize_t i
        requests = [self._requests[i] for i in range((self._n_methods + 1) * _COLUMNS)]
        buckets = [self._buckets[i] for i in range(self._n_bounds + 1)]
        return requests, buckets, self._sum, self._upgrades
