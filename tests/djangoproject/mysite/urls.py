from django.urls import path

from . import views

urlpatterns = [
    path("", views.index),
    path("echo", views.echo),
    path("stream", views.stream),
    path("boom", views.boom),
    path("async", views.async_view),
    path("meta", views.meta),
    path("selfcall", views.selfcall),
    path("version", views.version),
    path("db", views.db),
    path("big", views.big),
    path("thread", views.thread),
    path("hold", views.hold),
]
