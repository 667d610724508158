"""PackageFile and Environment moved to the environments app: forget them here, keep the tables.

The database is untouched; environments 0001 takes the two tables over (and renames them).
"""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('connections', '0002_environments'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.DeleteModel(name='PackageFile'),
                migrations.DeleteModel(name='Environment'),
            ],
            database_operations=[],
        ),
    ]
