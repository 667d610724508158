from django.db import migrations


class Migration(migrations.Migration):
    """`worker` named three things (the queue command, the sandbox process, this field)."""

    dependencies = [
        ("runs", "0003_ingest_columns"),
    ]

    operations = [
        migrations.RenameField(model_name="run", old_name="worker", new_name="executor"),
    ]
