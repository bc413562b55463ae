from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "estafeta.api"
    label = "api"
    verbose_name = "Estafeta REST API"
