"""`manage.py runserver --asgi` serves Django through fastbase.django.ASGIHandler
unless FASTBASE_ASGI_HANDLER = "django"; a Channels project's HTTP side too,
its WebSockets unchanged."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys

import httpx
import pytest
from test_django_runserver import FASTBASE_LINE, PROJECT, Runserver

django = pytest.importorskip("django")
if django.VERSION < (5, 0):
    pytest.skip("fastbase.django.ASGIHandler needs Django 5.0+", allow_module_level=True)

FASTBASE_THREAD = re.compile(r"fastbase-django-\d+")
DJANGO_THREAD = re.compile(r"ThreadPoolExecutor-\d+_0")


def _thread_names(port: int) -> list[str]:
    with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
        return [client.get("/thread").text for _ in range(10)]


@pytest.mark.parametrize("how", [["--asgi"], []], ids=["flag", "ASGI_APPLICATION"])
def test_runserver_asgi_serves_with_fastbase_handler(how):
    env = {} if how else {"FASTBASE_TEST_ASGI": "1"}
    with Runserver("0", "--noreload", *how, env=env) as server:
        port = server.port()
        assert FASTBASE_LINE.search("\n".join(server.stdout)).group(1) == "ASGI"
        names = _thread_names(port)
        assert all(FASTBASE_THREAD.fullmatch(n) for n in names), names
        # Reused, not one thread per request (usually two take turns: the
        # next request arrives while the last one's request_finished runs
        # after its response; more on a busy machine).
        assert len(set(names)) <= len(names) // 2, names
        assert httpx.get(f"http://127.0.0.1:{port}/async").text == "async ok"
        assert httpx.get(f"http://127.0.0.1:{port}/db").text == "db 1"
        assert httpx.get(f"http://127.0.0.1:{port}/boom").status_code == 500


def test_setting_goes_back_to_djangos_handler():
    with Runserver("0", "--noreload", "--asgi", env={"FASTBASE_TEST_ASGI_HANDLER": "django"}) as server:
        names = _thread_names(server.port())
        assert all(DJANGO_THREAD.fullmatch(n) for n in names), names
        assert len(set(names)) == len(names)  # Django's: a thread per request


def test_bad_setting_is_a_one_line_error():
    result = subprocess.run(
        [sys.executable, "manage.py", "runserver", "0", "--noreload", "--asgi"],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**__import__("os").environ, "DJANGO_SETTINGS_MODULE": "mysite.settings", "FASTBASE_TEST_ASGI_HANDLER": "fast"},
    )
    assert result.returncode != 0
    assert "CommandError: FASTBASE_ASGI_HANDLER must be one of 'fastbase', 'django', not 'fast'." in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("choice", ["fastbase", "django"])
def test_channels_project_http_and_websockets(choice):
    """A Channels ProtocolTypeRouter: its "http" entry (Django's
    get_asgi_application()) is served by fastbase's handler by default, by
    Django's with the setting; WebSockets behave the same either way."""
    pytest.importorskip("channels")
    pytest.importorskip("websockets")
    from websockets.asyncio.client import connect as ws_connect

    env = {"FASTBASE_TEST_CHANNELS": "1", "FASTBASE_TEST_ASGI_HANDLER": choice}
    with Runserver("0", "--noreload", env=env) as server:
        port = server.port()
        names = _thread_names(port)
        expected = FASTBASE_THREAD if choice == "fastbase" else DJANGO_THREAD
        assert all(expected.fullmatch(n) for n in names), names
        assert httpx.get(f"http://127.0.0.1:{port}/").text == "Hello from Django"
        response = httpx.post(f"http://127.0.0.1:{port}/echo", content=b"x" * 100_000)
        assert response.content == b"x" * 100_000

        async def client() -> None:
            async with ws_connect(f"ws://127.0.0.1:{port}/ws/echo/") as ws:
                assert await ws.recv() == "welcome /ws/echo/"
                await ws.send("ping")
                assert await ws.recv() == "echo:ping"

        asyncio.run(client())
        server.wait_for(r'"GET /ws/echo/ HTTP/1.1" 101 ', "stderr")
