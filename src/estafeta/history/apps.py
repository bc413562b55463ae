from django.apps import AppConfig


class HistoryConfig(AppConfig):
    name = "estafeta.history"
    label = "history"
