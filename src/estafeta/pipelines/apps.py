from django.apps import AppConfig


class PipelinesConfig(AppConfig):
    name = "estafeta.pipelines"
    label = "pipelines"
