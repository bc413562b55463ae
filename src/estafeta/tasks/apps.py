from django.apps import AppConfig


class TasksConfig(AppConfig):
    name = "estafeta.tasks"
    label = "tasks"
