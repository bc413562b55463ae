from django.apps import AppConfig


class ControlConfig(AppConfig):
    name = "estafeta.control"
    label = "control"
