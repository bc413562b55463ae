from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class HooksConfig(AppConfig):
    name = "estafeta.hooks"
    label = "hooks"
    verbose_name = _("Telephony and messenger webhooks")
