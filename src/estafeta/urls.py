from django.contrib import admin
from django.urls import path
from django.views.generic import RedirectView

admin.site.site_header = "Estafeta"
admin.site.site_title = "Estafeta"
admin.site.index_title = "Estafeta"
# Promise 3: the admin offers no bulk delete anywhere.
admin.site.disable_action("delete_selected")

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
]
