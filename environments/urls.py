from django.urls import path

from environments import views

urlpatterns = [
    path(
        "connections/<slug:slug>/environments/",
        views.connection_environments,
        name="connection_environments",
    ),
    path(
        "connections/<slug:slug>/packages/upload/",
        views.package_file_upload,
        name="package_file_upload",
    ),
    path(
        "connections/<slug:slug>/packages/<int:file_id>/delete/",
        views.package_file_delete,
        name="package_file_delete",
    ),
    path(
        "connections/<slug:slug>/environments/<str:key>/rebuild/",
        views.environment_rebuild,
        name="environment_rebuild",
    ),
]
