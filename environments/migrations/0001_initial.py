"""Take over PackageFile and Environment from the connections app, data included.

The tables were created by connections 0002 (connections_packagefile, connections_environment).
First the models enter this app's state on those tables, without touching the database; then
AlterModelTable renames the tables to this app's default names (environments_packagefile,
environments_environment). On a fresh database connections 0002 creates the tables first.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('connections', '0003_move_environments_to_environments_app'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='Environment',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('key', models.CharField(max_length=64, unique=True)),
                        ('status', models.CharField(choices=[('building', 'building'), ('ready', 'ready'), ('failed', 'failed')], max_length=10)),
                        ('python', models.CharField(max_length=40)),
                        ('requirements', models.JSONField(default=list)),
                        ('files', models.JSONField(default=list)),
                        ('packages', models.JSONField(default=list)),
                        ('error', models.TextField(blank=True)),
                        ('build_log', models.TextField(blank=True)),
                        ('size_bytes', models.BigIntegerField(blank=True, null=True)),
                        ('build_seconds', models.FloatField(blank=True, null=True)),
                        ('build_started_at', models.DateTimeField(blank=True, null=True)),
                        ('built_at', models.DateTimeField(blank=True, null=True)),
                        ('last_used_at', models.DateTimeField(blank=True, null=True)),
                        ('created_at', models.DateTimeField(auto_now_add=True)),
                    ],
                    options={
                        'ordering': ['-last_used_at', '-created_at'],
                        'db_table': 'connections_environment',
                    },
                ),
                migrations.CreateModel(
                    name='PackageFile',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('filename', models.CharField(max_length=255)),
                        ('sha256', models.CharField(max_length=64)),
                        ('size_bytes', models.BigIntegerField()),
                        ('created_at', models.DateTimeField(auto_now_add=True)),
                        ('connection', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='package_files', to='connections.connection')),
                        ('uploaded_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, to=settings.AUTH_USER_MODEL)),
                    ],
                    options={
                        'ordering': ['connection', 'filename'],
                        'constraints': [models.UniqueConstraint(fields=('connection', 'filename'), name='unique_package_file_name')],
                        'db_table': 'connections_packagefile',
                    },
                ),
            ],
            database_operations=[],
        ),
        migrations.AlterModelTable(name='environment', table=None),
        migrations.AlterModelTable(name='packagefile', table=None),
    ]
