from django.apps import AppConfig


class TicketsConfig(AppConfig):
    name = "estafeta.tickets"
    label = "tickets"
