from django.apps import AppConfig


class WebConfig(AppConfig):
    name = "estafeta.web"
    label = "web"
    verbose_name = "Estafeta web interface"
