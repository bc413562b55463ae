from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "estafeta.accounts"
    label = "accounts"
