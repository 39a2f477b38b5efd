"""Run by tests/test_django_runserver.py through `manage.py test mysite`."""

import json
import urllib.request
from pathlib import Path

from django.contrib.auth.models import User

from fastbase.django import LiveServer, LiveServerTestCase, StaticLiveServerTestCase


class LiveServerTests(LiveServerTestCase):
    def test_served_by_fastbase(self):
        self.assertIsInstance(self.server_thread.httpd, LiveServer)
        with urllib.request.urlopen(self.live_server_url + "/") as response:
            self.assertEqual(response.read(), b"Hello from Django")

    def test_view_calls_back_into_its_own_server(self):
        with urllib.request.urlopen(self.live_server_url + "/selfcall", timeout=20) as response:
            self.assertEqual(json.loads(response.read()), {"inner": "Hello from Django"})

    def test_database_shared_with_server_threads(self):
        User.objects.create(username="alice")
        with urllib.request.urlopen(self.live_server_url + "/meta") as response:
            self.assertEqual(response.status, 200)
        self.assertEqual(User.objects.count(), 1)


class StaticTests(StaticLiveServerTestCase):
    def test_static_file(self):
        with urllib.request.urlopen(self.live_server_url + "/static/hello.txt") as response:
            expected = (Path(__file__).resolve().parent.parent / "static" / "hello.txt").read_bytes()
            self.assertEqual(response.read(), expected)
