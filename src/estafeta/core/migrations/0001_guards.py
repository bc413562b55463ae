"""Promise 3 in the database: triggers refuse DELETE on every table that keeps the record of
what happened (and TRUNCATE on PostgreSQL), and UPDATE on the append-only ones."""

from django.db import migrations

from estafeta.core.db import RefuseChanges

UNDELETABLE = [
    "accounts_user", "accounts_team", "accounts_absence",
    "clients_segment", "clients_territory", "clients_client",
    "pipelines_pipeline", "pipelines_lostreason",
    "tickets_ticket", "tickets_stagevisit", "tickets_checklistentry", "tickets_activity",
    "tickets_document", "tickets_storedfile", "tasks_task",
]
APPEND_ONLY = [
    "pipelines_pipelineversion", "pipelines_stage", "pipelines_checklistitem",
    "history_event", "history_checkpoint",
]


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0001_initial"),
        ("clients", "0001_initial"),
        ("pipelines", "0001_initial"),
        ("tickets", "0001_initial"),
        ("tasks", "0002_initial"),
        ("history", "0002_initial"),
    ]

    operations = [RefuseChanges(table) for table in UNDELETABLE] + [
        RefuseChanges(table, refuse_update=True) for table in APPEND_ONLY
    ]
