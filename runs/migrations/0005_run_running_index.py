from django.db import migrations, models


class Migration(migrations.Migration):
    """Running runs by start time: the concurrency caps count running previews on each preview."""

    dependencies = [
        ("runs", "0004_run_executor"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="run",
            index=models.Index(
                condition=models.Q(("status", "running")),
                fields=["started_at"],
                name="run_running",
            ),
        ),
    ]
