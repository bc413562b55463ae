from django.contrib import admin
from django.urls import include, path
from rest_framework.authtoken.models import TokenProxy

admin.site.site_header = "Estafeta"
admin.site.site_title = "Estafeta"
admin.site.index_title = "Estafeta"
# Promise 3: the admin offers no bulk delete anywhere.
admin.site.disable_action("delete_selected")
# API tokens are managed by their owners through the API (issue and revoke), not here.
if admin.site.is_registered(TokenProxy):
    admin.site.unregister(TokenProxy)

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", include("estafeta.api.urls")),
    path("hooks/", include("estafeta.hooks.urls")),
    path("", include("estafeta.web.urls")),
]
