from django.urls import path

from runs import views

app_name = "runs"
urlpatterns = [
    path("<int:run_id>/", views.run_detail, name="detail"),
    path("connector/<slug:slug>/", views.connector_runs, name="connector_runs"),
    path("connector/<slug:slug>/preview/<str:action>/", views.preview, name="preview"),
]
