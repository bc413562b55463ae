from django.apps import AppConfig


class ClientsConfig(AppConfig):
    name = "estafeta.clients"
    label = "clients"
