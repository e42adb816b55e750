"""The keep-alive client reuses its connections, survives a server's close, and is bounded.

The first test pins the httptools version the client was checked against; the last
runs the others again on uvloop's event loop (the one the services run on).
"""

from __future__ import annotations

import asyncio
import socket

import httptools
import pytest
import uvloop

from driftloop_serving.adapters.keepalive import BadAnswer, KeepAliveClient, NotAnswered
from tests.fakes.serving import CannedHTTPServer, http_answer

pytestmark = pytest.mark.unit

OK = http_answer(200, b'{"ok": true}')


def test_the_client_was_checked_against_httptools_0_9() -> None:
    assert httptools.__version__.startswith("0.9."), (
        "driftloop_serving.adapters.keepalive was checked against httptools 0.9: check "
        "its HttpResponseParser callbacks and should_keep_alive, then update this pin"
    )


async def test_requests_share_one_connection_and_send_their_headers_and_body() -> None:
    async with CannedHTTPServer(lambda head, body: OK) as server:
        client = KeepAliveClient(server.url + "/base/", timeout=2)
        replies = [
            await client.post("/path", b'{"n": %d}' % n, {"Authorization": "Bearer t"})
            for n in range(3)
        ]
        await client.aclose()
    assert [(r.status, r.body, r.content_type) for r in replies] == [
        (200, b'{"ok": true}', "application/json")
    ] * 3
    assert server.connections == 1
    head, body = server.requests[2]
    assert head.startswith(b"POST /base/path HTTP/1.1\r\n")
    assert b"\r\nAuthorization: Bearer t\r\n" in head
    assert b"\r\nContent-Length: 8\r\n" in head
    assert body == b'{"n": 2}'


async def test_a_kept_connection_the_server_closed_is_replaced_and_the_request_sent_again() -> None:
    # The server closes the connection on its second request without answering, as when
    # its keep-alive timeout crosses the request.
    def answer(head: bytes, body: bytes) -> bytes | None:
        return None if len(server.requests) == 2 else OK

    async with CannedHTTPServer(answer) as server:
        client = KeepAliveClient(server.url, timeout=2)
        first = await client.post("/", b"1", {})
        second = await client.post("/", b"2", {})
        await client.aclose()
    assert (first.status, second.status) == (200, 200)
    assert server.connections == 2
    assert [body for _, body in server.requests] == [b"1", b"2", b"2"]


async def test_a_new_connection_closed_without_an_answer_is_an_error_not_a_retry() -> None:
    async with CannedHTTPServer(lambda head, body: None) as server:
        client = KeepAliveClient(server.url, timeout=2)
        with pytest.raises(NotAnswered):
            await client.post("/", b"", {})
        await client.aclose()
    assert server.connections == 1


async def test_an_answer_cut_short_times_out_and_its_connection_is_not_reused() -> None:
    cut = b"HTTP/1.1 200 OK\r\ncontent-length: 9\r\n\r\nabc"
    answers = iter([cut, OK])
    async with CannedHTTPServer(lambda head, body: next(answers)) as server:
        client = KeepAliveClient(server.url, timeout=0.3)
        with pytest.raises(TimeoutError):
            await client.post("/", b"", {})
        after = await client.post("/", b"", {})
        await client.aclose()
    assert after.body == b'{"ok": true}'
    assert server.connections == 2


async def test_chunked_and_read_until_close_answers_are_read_whole() -> None:
    chunked = (
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
    )
    until_close = b"HTTP/1.0 201 Created\r\n\r\nxyz"
    answers = iter([chunked, until_close, chunked])
    async with CannedHTTPServer(lambda head, body: next(answers)) as server:
        client = KeepAliveClient(server.url, timeout=2)
        replies = [await client.post("/", b"", {}) for _ in range(3)]
        await client.aclose()
    assert [(r.status, r.body) for r in replies] == [
        (200, b"abcde"),
        (201, b"xyz"),
        (200, b"abcde"),
    ]
    assert server.connections == 2  # HTTP/1.0 without keep-alive: closed after its answer


async def test_a_server_that_does_not_answer_http_or_in_time_or_at_all_fails_the_request() -> None:
    async with CannedHTTPServer(lambda head, body: b"SSH-2.0-OpenSSH\r\n\r\n") as server:
        client = KeepAliveClient(server.url, timeout=2)
        with pytest.raises(BadAnswer):
            await client.post("/", b"", {})
    async with CannedHTTPServer(lambda head, body: ...) as server:
        client = KeepAliveClient(server.url, timeout=0.2)
        with pytest.raises(TimeoutError):
            await client.post("/", b"", {})
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    with pytest.raises(ConnectionRefusedError):
        await KeepAliveClient(f"http://127.0.0.1:{port}", timeout=2).post("/", b"", {})


async def test_concurrent_requests_open_at_most_max_connections() -> None:
    async with CannedHTTPServer(lambda head, body: OK) as server:
        client = KeepAliveClient(server.url, timeout=5, max_connections=2, max_idle=1)
        replies = await asyncio.gather(*(client.post("/", b"", {}) for _ in range(10)))
        await client.aclose()
    assert [r.status for r in replies] == [200] * 10
    assert server.most_open == 2
    assert len(client._idle) == 0  # closed by aclose


def test_a_header_with_a_line_break_or_a_url_without_a_host_is_refused() -> None:
    with pytest.raises(ValueError, match="not an http"):
        KeepAliveClient("features:6566", timeout=1)
    client = KeepAliveClient("http://features:6566", timeout=1)
    with pytest.raises(ValueError, match="line break"):
        client._head("/", 0, {"X": "a\r\nInjected: 1"})


def test_the_client_works_the_same_on_uvloop() -> None:
    for test in (
        test_requests_share_one_connection_and_send_their_headers_and_body,
        test_a_kept_connection_the_server_closed_is_replaced_and_the_request_sent_again,
        test_a_new_connection_closed_without_an_answer_is_an_error_not_a_retry,
        test_an_answer_cut_short_times_out_and_its_connection_is_not_reused,
        test_chunked_and_read_until_close_answers_are_read_whole,
        test_a_server_that_does_not_answer_http_or_in_time_or_at_all_fails_the_request,
        test_concurrent_requests_open_at_most_max_connections,
    ):
        uvloop.run(test())
