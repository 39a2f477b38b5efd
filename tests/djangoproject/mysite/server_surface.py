"""Run by tests/test_django_servers.py through
`manage.py test mysite.server_surface`: fastbase's DevServer and LiveServer
as Django and third-party code use basehttp's servers."""

import io
import socket
import socketserver
import threading
import urllib.request
from contextlib import redirect_stderr

from django.core.servers import basehttp
from django.test import LiveServerTestCase as DjangoLiveServerTestCase
from django.test import SimpleTestCase
from django.test.testcases import LiveServerThread as DjangoLiveServerThread

from fastbase.django import DevServer, LiveServer, LiveServerTestCase


class QuietByDefault(LiveServerTestCase):
    """Django's live server passes QuietWSGIRequestHandler: nothing is
    logged per request (the pytest side checks the run's whole stderr)."""

    def test_requests(self):
        for path in ("/", "/meta", "/nowhere"):
            try:
                with urllib.request.urlopen(self.live_server_url + path) as response:
                    response.read()
            except urllib.error.HTTPError as exc:
                exc.close()
                self.assertEqual(exc.code, 404)


class RecordingHandler(basehttp.WSGIRequestHandler):
    """A project's own request handler: its log_message is what logs."""

    messages = []
    logged = threading.Event()

    def log_message(self, format, *args):
        type(self).messages.append((format % args, self.client_address[0], self.command, self.path, self.headers["User-Agent"]))
        type(self).logged.set()


class RecordingThread(DjangoLiveServerThread):
    server_class = LiveServer

    def _create_server(self, connections_override=None):
        return self.server_class(
            (self.host, self.port), RecordingHandler, allow_reuse_address=False, connections_override=connections_override
        )


class CustomHandlerLogs(DjangoLiveServerTestCase):
    server_thread_class = RecordingThread

    def test_handler_log_message_is_used(self):
        request = urllib.request.Request(self.live_server_url + "/?x=1", headers={"User-Agent": "probe/1.0"})
        with urllib.request.urlopen(request) as response:
            self.assertEqual(response.read(), b"Hello from Django")
        self.assertTrue(RecordingHandler.logged.wait(10))
        self.assertEqual(RecordingHandler.messages, [('"GET /?x=1 HTTP/1.1" 200 17', "127.0.0.1", "GET", "/?x=1", "probe/1.0")])


class SocketServerSurface(SimpleTestCase):
    def test_is_a_basehttp_server(self):
        for cls in (DevServer, LiveServer):
            with self.subTest(cls=cls):
                with cls(("127.0.0.1", 0), basehttp.WSGIRequestHandler) as server:
                    self.assertIsInstance(server, basehttp.WSGIServer)
                    self.assertIsInstance(server, socketserver.TCPServer)
                    host, port = server.server_address[:2]
                    self.assertEqual((host, server.server_port), ("127.0.0.1", port))
                    self.assertNotEqual(port, 0)
                    self.assertIs(server.RequestHandlerClass, basehttp.WSGIRequestHandler)
                    self.assertIn("SERVER_PORT", server.base_environ)
                    # shutdown() before serve_forever returns at once.
                    server.shutdown()
                self.assertEqual(server.socket.fileno(), -1)  # __exit__ closed it
        with LiveServer(("127.0.0.1", 0), None, connections_override={"x": 1}) as server:
            self.assertIsInstance(server, basehttp.ThreadedWSGIServer)
            self.assertIsInstance(server, socketserver.ThreadingMixIn)
            self.assertEqual(server.connections_override, {"x": 1})

    def test_broken_pipe_errors(self):
        """As basehttp.WSGIServer: one INFO line, nothing on stderr; the
        timestamp as on runserver's request lines."""
        server = DevServer(("127.0.0.1", 0), basehttp.WSGIRequestHandler)
        try:
            for exception in (BrokenPipeError, ConnectionAbortedError, ConnectionResetError):
                with self.subTest(exception=exception):
                    try:
                        raise exception()
                    except Exception:
                        err = io.StringIO()
                        with redirect_stderr(err), self.assertLogs("django.server", "INFO") as cm:
                            server.handle_error(None, ("192.168.2.0", 8080))
                    self.assertEqual(err.getvalue(), "")
                    (record,) = cm.records
                    self.assertEqual(record.getMessage(), "- Broken pipe from ('192.168.2.0', 8080)")
                    self.assertRegex(record.server_time, r"^\d\d/\w{3}/\d{4} \d\d:\d\d:\d\d$")
        finally:
            server.server_close()

    def test_other_errors_print_a_traceback(self):
        server = DevServer(("127.0.0.1", 0), basehttp.WSGIRequestHandler)
        try:
            try:
                raise ValueError("boom")
            except ValueError:
                err = io.StringIO()
                with redirect_stderr(err):
                    server.handle_error(None, ("192.168.2.0", 8080))
            self.assertIn("ValueError: boom", err.getvalue())
            self.assertIn("('192.168.2.0', 8080)", err.getvalue())
        finally:
            server.server_close()

    def test_serve_forever_shutdown_server_close(self):
        server = LiveServer(("127.0.0.1", 0), basehttp.WSGIRequestHandler)

        def app(environ, start_response):
            start_response("200 OK", [("Content-Length", "2")])
            return [b"ok"]

        server.set_app(app)
        thread = threading.Thread(target=server.serve_forever)
        thread.start()
        try:
            url = "http://127.0.0.1:%d/" % server.server_address[1]
            with self.assertLogs("django.server", "INFO") as cm:
                with urllib.request.urlopen(url) as response:
                    self.assertEqual(response.read(), b"ok")
                # Logged by the time shutdown() has waited for serve_forever.
                server.shutdown()
            self.assertIn('"GET / HTTP/1.1" 200 2', cm.records[0].getMessage())
        finally:
            server.shutdown()
            server.server_close()
            thread.join(10)
        self.assertFalse(thread.is_alive())
        with self.assertRaises(OSError):
            socket.create_connection(("127.0.0.1", server.server_address[1]), timeout=2).close()

    def test_handle_request_serves_one_request_with_the_handler_class(self):
        server = DevServer(("127.0.0.1", 0), basehttp.WSGIRequestHandler)

        def app(environ, start_response):
            start_response("200 OK", [("Content-Length", "3")])
            return [b"one"]

        server.set_app(app)
        server.timeout = 10
        thread = threading.Thread(target=server.handle_request)
        thread.start()
        try:
            # (The handler logs the request after sending the response:
            # handle_request has returned once it has.)
            with self.assertLogs("django.server", "INFO") as cm:
                url = "http://127.0.0.1:%d/" % server.server_address[1]
                with urllib.request.urlopen(url) as response:
                    self.assertEqual(response.read(), b"one")
                thread.join(10)
            self.assertFalse(thread.is_alive())
            self.assertIn('"GET / HTTP/1.1" 200 3', cm.records[0].getMessage())
        finally:
            server.server_close()

    def test_dev_server_logs_through_its_handler_class(self):
        """runserver's DevServer honours the handler class as LiveServer does:
        a quiet one logs nothing, a custom one's log_message is used."""

        class Recording(basehttp.WSGIRequestHandler):
            lines = []
            logged = threading.Event()

            def log_message(self, format, *args):
                type(self).lines.append(format % args)
                type(self).logged.set()

        def app(environ, start_response):
            start_response("200 OK", [("Content-Length", "2")])
            return [b"ok"]

        from django.test.testcases import QuietWSGIRequestHandler

        for handler, expected in ((Recording, ['"GET /dev HTTP/1.1" 200 2']), (QuietWSGIRequestHandler, [])):
            with self.subTest(handler=handler.__name__):
                server = DevServer(("127.0.0.1", 0), handler)
                server.set_app(app)
                thread = threading.Thread(target=server.serve_forever)
                thread.start()
                try:
                    with self.assertNoLogs("django.server", "DEBUG"):
                        url = "http://127.0.0.1:%d/dev" % server.server_address[1]
                        with urllib.request.urlopen(url) as response:
                            self.assertEqual(response.read(), b"ok")
                        server.shutdown()  # in-flight requests (and their log lines) done
                finally:
                    server.shutdown()
                    server.server_close()
                    thread.join(10)
                if handler is Recording:
                    self.assertTrue(Recording.logged.is_set())
                    self.assertEqual(Recording.lines, expected)
