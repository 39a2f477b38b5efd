"""fastbase.django.DevServer and LiveServer as Django and third-party code
use basehttp's servers: Django's own test runner runs
tests/djangoproject/mysite/server_surface.py in a subprocess (so Django's
settings never leak into this process)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("django")

PROJECT = Path(__file__).parent / "djangoproject"


def test_server_surface_handler_classes_and_quiet_live_server():
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="mysite.settings")
    env.pop("PYTHONWARNINGS", None)
    result = subprocess.run(
        [sys.executable, "manage.py", "test", "mysite.server_surface", "-v", "2"],
        cwd=PROJECT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "Ran 8 tests" in result.stderr and "\nOK" in result.stderr, result.stderr
    # LiveServerThread's QuietWSGIRequestHandler: no request line at all
    # (the custom handler's lines went to its own log_message, not stderr).
    assert not re.search(r'"(GET|HEAD|POST) /', result.stderr + result.stdout), result.stderr
