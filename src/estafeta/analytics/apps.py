from django.apps import AppConfig


class AnalyticsConfig(AppConfig):
    name = "estafeta.analytics"
    label = "analytics"
