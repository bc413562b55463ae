"""``/hooks/``: the signed webhook endpoints (docs/webhooks-in.md)."""

from django.urls import path

from . import views

app_name = "hooks"

urlpatterns = [
    path("telephony/<slug:slug>/", views.telephony_hook, name="telephony"),
    path("messenger/<slug:slug>/", views.messenger_hook, name="messenger"),
]
