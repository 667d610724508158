from django.urls import path

from connections import views

urlpatterns = [
    path("", views.home, name="home"),
]
