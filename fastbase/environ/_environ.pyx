# cython: language_level=3
"""A request head as an application sees it, a WSGI environ or an ASGI HTTP
scope: the compiled copy of ``fastbase.environ._environ_py`` (the readable spec;
same API, same result).

Building the environ is the largest piece of per-request work in the WSGI
bridge; done here it takes about half the time it takes in Python. The
scope's dozen entries cost the ASGI bridge about 40 bytecodes a request in
Python.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from cpython.dict cimport PyDict_Copy, PyDict_GetItemWithError, PyDict_SetItem
from cpython.object cimport PyObject
from cpython.unicode cimport PyUnicode_DecodeLatin1, PyUnicode_DecodeUTF8
from libc.string cimport memchr

from fastbase.http._parser cimport Request

from urllib.parse import unquote_to_bytes

MAX_CACHED_NAMES = 1024
cdef Py_ssize_t _MAX_CACHED = MAX_CACHED_NAMES

cdef dict _header_keys = {b"content-type": "CONTENT_TYPE", b"content-length": "CONTENT_LENGTH"}
cdef dict _methods = {}
cdef dict _asgi_versions = {"version": "3.0", "spec_version": "2.4"}


cdef inline str _latin1(bytes data):
    return PyUnicode_DecodeLatin1(PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data), NULL)


cdef inline bint _has(bytes data, char c):
    # memchr, not data.find(): Cython calls find as a Python method (~40x
    # the cost).
    return memchr(PyBytes_AS_STRING(data), c, PyBytes_GET_SIZE(data)) != NULL


cdef object _header_key(bytes name):
    # None: a name with "_" is dropped (see the twin).
    cdef object key
    if _has(name, b"_"):
        key = None
    else:
        key = "HTTP_" + _latin1(name).upper().replace("-", "_")
    if len(_header_keys) < _MAX_CACHED:
        _header_keys[name] = key
    return key


cdef inline str _method(bytes token):
    # (GetItemWithError: GetItem saves and restores the error state on
    # every call, about twice the cost of the lookup itself.)
    cdef PyObject* found = PyDict_GetItemWithError(_methods, token)
    if found is not NULL:
        return <str>found
    cdef str method = _latin1(token)
    if len(_methods) < _MAX_CACHED:
        _methods[token] = method
    return method


def wsgi_environ(dict base not None, Request request not None, str root_path, body):
    cdef dict environ = PyDict_Copy(base)
    cdef PyObject* found
    cdef bytes path, target, name, value
    cdef str path_info, text
    cdef object key
    cdef Py_ssize_t root_len

    environ["REQUEST_METHOD"] = _method(request.method)

    path = request.path
    if _has(path, b"%"):
        path = unquote_to_bytes(path)
    path_info = _latin1(path)
    if root_path:
        root_len = len(root_path)
        if path_info.startswith(root_path) and (len(path_info) == root_len or path_info[root_len] == "/"):
            path_info = path_info[root_len:]
    environ["PATH_INFO"] = path_info
    environ["QUERY_STRING"] = _latin1(request.query)
    target = request.target
    text = _latin1(target)
    environ["RAW_URI"] = text
    environ["REQUEST_URI"] = text
    environ["SERVER_PROTOCOL"] = "HTTP/1.1" if request.http_version == "1.1" else "HTTP/1.0"

    for name, value in request.headers:
        found = PyDict_GetItemWithError(_header_keys, name)
        key = _header_key(name) if found is NULL else <object>found
        if key is None:
            continue
        text = _latin1(value)
        found = PyDict_GetItemWithError(environ, key)
        if found is not NULL:
            # PEP 3333 / RFC 9110 5.3: repeated fields combine with ","
            # (cookies with "; ", RFC 6265 5.4).
            text = (<str>found) + ("; " if key == "HTTP_COOKIE" else ",") + text
        PyDict_SetItem(environ, key, text)

    if request.host is not None and PyBytes_AS_STRING(target)[0] != b"/" and target != b"*":
        # RFC 9112 3.2.2: the absolute-form's authority wins over Host.
        environ["HTTP_HOST"] = _latin1(request.host)
    if request.chunked:
        environ.pop("HTTP_TRANSFER_ENCODING", None)
    environ["wsgi.input"] = body
    return environ


cpdef tuple scope_paths(bytes raw_path, str root_path):
    if raw_path is None:
        raise TypeError("raw_path must be bytes, not NoneType")
    cdef bytes decoded = unquote_to_bytes(raw_path) if _has(raw_path, b"%") else raw_path
    cdef str path = PyUnicode_DecodeUTF8(PyBytes_AS_STRING(decoded), PyBytes_GET_SIZE(decoded), "replace")
    cdef Py_ssize_t root_len
    if root_path:
        root_len = len(root_path)
        if not (path.startswith(root_path) and (len(path) == root_len or path[root_len] == "/")):
            return root_path + path, root_path.encode("utf-8") + raw_path
    return path, raw_path


def authority_headers(list headers, bytes authority):
    # (RFC 9112 3.2.2; see the twin.)
    cdef list replaced = []
    cdef bint found = False
    cdef bytes name
    for name, value in headers:
        if name == b"host":
            found = True
            replaced.append((b"host", authority))
        else:
            replaced.append((name, value))
    if not found:
        replaced.insert(0, (b"host", authority))
    return replaced


cpdef list request_headers(Request request):
    cdef bytes target = request.target
    if PyBytes_AS_STRING(target)[0] == b"/" or target == b"*":
        return request.headers
    return authority_headers(request.headers, request.host)


def http_scope(dict base not None, Request request not None, dict state not None):
    cdef dict scope = PyDict_Copy(base)
    cdef tuple paths = scope_paths(request.path, base["root_path"])
    scope["asgi"] = PyDict_Copy(_asgi_versions)
    scope["http_version"] = request.http_version
    scope["method"] = _method(request.method)
    scope["path"] = paths[0]
    scope["raw_path"] = paths[1]
    scope["query_string"] = request.query
    cdef bytes target = request.target
    if PyBytes_AS_STRING(target)[0] == b"/" or target == b"*":
        scope["headers"] = request.headers
    else:
        # An absolute-form target (rare): its authority is the Host.
        scope["headers"] = authority_headers(request.headers, request.host)
    scope["state"] = PyDict_Copy(state)
    scope["extensions"] = {
        "http.response.trailers": {},
        "http.response.pathsend": {},
        "http.response.early_hint": {},
    }
    return scope
