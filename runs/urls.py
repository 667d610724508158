from django.urls import path

from runs import views

app_name = "runs"
urlpatterns = [
    path("<int:run_id>/", views.run_detail, name="detail"),
    path("<int:run_id>/progress/", views.run_progress, name="progress"),
    path("<int:run_id>/tree/", views.run_tree, name="tree"),
    path("<int:run_id>/cancel/", views.run_cancel, name="cancel"),
    path("<int:run_id>/delete-anyway/", views.ingest_delete_anyway, name="delete_anyway"),
    path("connector/<slug:slug>/", views.connector_runs, name="connector_runs"),
    path("connector/<slug:slug>/recent/", views.connector_recent_runs, name="recent_runs"),
    path("connector/<slug:slug>/preview/<str:action>/", views.preview, name="preview"),
    path("connector/<slug:slug>/ingest/", views.ingest_start, name="ingest"),
    path("connector/<slug:slug>/ingest/plan/", views.ingest_plan, name="ingest_plan"),
    path("connector/<slug:slug>/partitions/", views.connector_partitions, name="partitions"),
    path("connector/<slug:slug>/schedule/", views.schedule_update, name="schedule"),
    path(
        "connector/<slug:slug>/partitions/<int:partition_id>/",
        views.partition_rows,
        name="partition_rows",
    ),
]
