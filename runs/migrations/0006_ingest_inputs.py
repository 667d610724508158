from django.db import migrations, models


class Migration(migrations.Migration):
    """An ingest keeps the hash of each input its code fingerprint covers, so a plan can say which
    one changed; a read's reason names them, which takes more than 20 characters."""

    dependencies = [
        ("runs", "0005_run_running_index"),
    ]

    operations = [
        migrations.AddField(
            model_name="run",
            name="inputs",
            field=models.JSONField(blank=True, default=dict),
        ),
        migrations.AlterField(
            model_name="partitionjob",
            name="reason",
            field=models.CharField(blank=True, max_length=200),
        ),
    ]
