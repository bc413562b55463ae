"""PLACEHOLDER: replaced by the page module of this area."""

from django.http import HttpRequest, HttpResponse
from django.urls import path


def placeholder(request: HttpRequest, **kwargs: object) -> HttpResponse:
    return HttpResponse(status=501)


urlpatterns = [
    path("board/", placeholder, name="board"),
]
