"""An index on tasks' done_at for K12 overdue (tasks open at a moment include those done after
it: docs/analytics-scale.md). Made here, beside the query that needs it, as plain SQL that
both engines accept; the tasks app's model state is unchanged."""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("analytics", "0002_summary"),
        ("tasks", "0003_task_list_index"),
    ]

    operations = [
        migrations.RunSQL(
            "CREATE INDEX IF NOT EXISTS analytics_task_done_at ON tasks_task (done_at) "
            "WHERE done_at IS NOT NULL",
            "DROP INDEX IF EXISTS analytics_task_done_at"),
    ]
