from django.urls import path

from connections import views

urlpatterns = [
    path("connections/new/", views.connection_create, name="connection_create"),
    path("connections/<slug:slug>/", views.connection_detail, name="connection_detail"),
    path("connections/<slug:slug>/edit/", views.connection_edit, name="connection_edit"),
    path("connections/<slug:slug>/audit/", views.connection_audit, name="connection_audit"),
    path(
        "connections/<slug:slug>/connectors/new/",
        views.connector_create,
        name="connector_create",
    ),
    path("spark/status/", views.spark_status, name="spark_status"),
    path("connectors/<slug:slug>/", views.connector_editor, name="connector_editor"),
    path("connectors/<slug:slug>/save/", views.connector_save, name="connector_save"),
    path("connectors/<slug:slug>/check/", views.connector_check, name="connector_check"),
    path("connectors/<slug:slug>/download/", views.connector_download, name="connector_download"),
    path("connectors/<slug:slug>/upload/", views.connector_upload, name="connector_upload"),
    path("connectors/<slug:slug>/versions/", views.connector_versions, name="connector_versions"),
    path(
        "connectors/<slug:slug>/versions/<int:number>/revert/",
        views.connector_revert,
        name="connector_revert",
    ),
]
