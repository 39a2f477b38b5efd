from django.urls import path

from . import views

urlpatterns = [
    path("", views.index, name="index"),
    path("echo/", views.echo, name="echo"),
    path("upload/", views.upload, name="upload"),
    path("meta/", views.meta, name="meta"),
    path("stream/", views.stream, name="stream"),
    path("file/", views.file, name="file"),
    path("boom/", views.boom, name="boom"),
]
