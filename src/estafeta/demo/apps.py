from django.apps import AppConfig


class DemoConfig(AppConfig):
    name = "estafeta.demo"
    label = "demo"
