from django.urls import path

from runs import views

app_name = "runs"
urlpatterns = [
    path("<int:run_id>/", views.run_detail, name="detail"),
]
