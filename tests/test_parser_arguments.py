"""Bad arguments to the parser and writer: both twins refuse them with the
same exception type (the ``impl`` fixture runs each case on both).

Found by fuzz/: the compiled parser truncated a float ``max_body_size`` and
``body_length`` silently (``encode_head(200, [], body_length=1.5)`` wrote
``content-length: 1``), and the twin took limits of any type and sizes no C
integer holds, where the compiled copy raised."""

from __future__ import annotations

import pytest

GET = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"

BAD_ARGUMENTS = [
    pytest.param(lambda m: m.RequestParser(max_request_line=None), TypeError, id="none-limit"),
    pytest.param(lambda m: m.RequestParser(max_fields=1.5), TypeError, id="float-limit"),
    pytest.param(lambda m: m.RequestParser(max_header_size="5"), TypeError, id="str-limit"),
    pytest.param(lambda m: m.RequestParser(max_field_size=2**63), OverflowError, id="limit-over-ssize-t"),
    pytest.param(lambda m: m.RequestParser(max_chunk_extensions=-(2**63) - 1), OverflowError, id="limit-under-ssize-t"),
    pytest.param(lambda m: m.RequestParser(max_body_size=1.5), TypeError, id="float-max-body-size"),
    pytest.param(lambda m: m.RequestParser(max_body_size="5"), TypeError, id="str-max-body-size"),
    pytest.param(lambda m: m.RequestParser(max_body_size=2**63), OverflowError, id="max-body-size-over-64-bits"),
    pytest.param(lambda m: m.RequestParser().feed(None), TypeError, id="feed-none"),
    pytest.param(lambda m: m.RequestParser().feed("GET / HTTP/1.1\r\n"), TypeError, id="feed-str"),
    pytest.param(lambda m: m.RequestParser().feed(5), TypeError, id="feed-int"),
    pytest.param(lambda m: m.encode_head(200, [], body_length=1.5), TypeError, id="float-body-length"),
    pytest.param(lambda m: m.encode_head(200, [], body_length=None), TypeError, id="none-body-length"),
    pytest.param(lambda m: m.encode_head(200, [], body_length=2**63), OverflowError, id="body-length-over-64-bits"),
    pytest.param(lambda m: m.encode_head(None, []), "InvalidResponse", id="none-status"),
    pytest.param(lambda m: m.encode_head(200.0, []), "InvalidResponse", id="float-status"),
    pytest.param(lambda m: m.encode_head(-200, []), "InvalidResponse", id="negative-status"),
    pytest.param(lambda m: m.encode_head(2**70, []), "InvalidResponse", id="huge-status"),
    pytest.param(lambda m: m.encode_head(200, None), TypeError, id="none-headers"),
    pytest.param(lambda m: m.encode_head(200, [(None, b"x")]), "InvalidResponse", id="none-header-name"),
    pytest.param(lambda m: m.encode_head(200, [(b"a", 5)]), "InvalidResponse", id="int-header-value"),
    pytest.param(lambda m: m.encode_head(200, [], reason=5), "InvalidResponse", id="int-reason"),
    pytest.param(lambda m: m.encode_response(200, [], None, None, True, True, False, None), TypeError, id="none-body"),
    pytest.param(lambda m: m.encode_response(200, [], "x", None, True, True, False, None), TypeError, id="str-body"),
    pytest.param(
        lambda m: m.encode_response(200, [], bytearray(b"x"), None, True, True, False, None),
        TypeError,
        id="bytearray-body",
    ),
    pytest.param(lambda m: m.encode_chunk("x"), TypeError, id="str-chunk"),
    pytest.param(lambda m: m.encode_chunk(5), TypeError, id="int-chunk"),
    pytest.param(lambda m: m.encode_trailers(None), TypeError, id="none-trailers"),
    pytest.param(lambda m: m.encode_trailers([(b"a", None)]), "InvalidResponse", id="none-trailer-value"),
    pytest.param(lambda m: m.encode_error(None), "InvalidResponse", id="none-error-status"),
]


@pytest.mark.parametrize("call, error", BAD_ARGUMENTS)
def test_bad_arguments_refused_alike(impl, call, error):
    from fastbase.http.errors import InvalidResponse

    expected = InvalidResponse if error == "InvalidResponse" else error
    with pytest.raises(Exception) as info:
        call(impl)
    assert type(info.value) is expected


def test_largest_arguments_accepted(impl):
    """What fits a C integer is still taken, by both."""
    parser = impl.RequestParser(max_body_size=2**63 - 1, max_fields=2**63 - 1)
    assert parser.max_body_size == 2**63 - 1
    assert len(parser.feed(GET)) == 2
    assert impl.RequestParser(max_body_size=None).max_body_size == -1
    head, framing, length, _ = impl.encode_head(200, [], body_length=2**63 - 1)
    assert b"content-length: 9223372036854775807\r\n" in head
    assert (framing, length) == (impl.LENGTH, 2**63 - 1)
    # bool is an int, for both.
    assert impl.encode_head(200, [], body_length=True)[2] == 1
