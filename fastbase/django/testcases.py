"""Live-server test cases served by fastbase."""

from __future__ import annotations

from django.contrib.staticfiles.testing import StaticLiveServerTestCase as _StaticLiveServerTestCase
from django.test import LiveServerTestCase as _LiveServerTestCase
from django.test.testcases import LiveServerThread as _LiveServerThread

from .servers import LiveServer


class LiveServerThread(_LiveServerThread):
    server_class = LiveServer


class LiveServerTestCase(_LiveServerTestCase):
    server_thread_class = LiveServerThread


class StaticLiveServerTestCase(_StaticLiveServerTestCase):
    server_thread_class = LiveServerThread
