"""Serve a raw WSGI app with Django's development server, the code under
``manage.py runserver`` (``django.core.servers.basehttp.run``, threaded), for
the scenarios that have no Django project.

    python basehttp_serve.py PORT module:attr
"""

import importlib
import sys

from django.core.servers.basehttp import run

if __name__ == "__main__":
    port, target = int(sys.argv[1]), sys.argv[2]
    module, _, attr = target.partition(":")
    app = getattr(importlib.import_module(module), attr)
    run("127.0.0.1", port, app, threading=True)
