"""Calls and messages become undeletable but updatable: erasing a client's personal data
(``clients.services.client_anonymise``) empties their numbers, names and texts; the rows, their
ids and links stay."""

from django.db import migrations

from estafeta.core.db import AllowUpdates


class Migration(migrations.Migration):

    dependencies = [
        ("hooks", "0001_initial"),
    ]

    operations = [
        AllowUpdates("hooks_hookcall"),
        AllowUpdates("hooks_hookmessage"),
    ]
