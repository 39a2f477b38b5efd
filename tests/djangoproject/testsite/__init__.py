"""A second settings/urls package next to ``mysite`` (which the runserver
tests use with "fastbase" in INSTALLED_APPS): plain Django served as a WSGI
app, DEBUG off, CSRF on. ``DJANGO_SETTINGS_MODULE=testsite.settings``; works
with Django 5.2 and 6.x."""
