"""Top-level URLs: the admin, login/logout, and each app's pages."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from connectors_site.health import healthz
from runs.views import home

admin.site.site_header = "Connector Studio admin"
admin.site.site_title = "Connector Studio"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("healthz", healthz, name="healthz"),
    path("", home, name="home"),
    path("runs/", include("runs.urls")),
    path("", include("connections.urls")),
    path("", include("environments.urls")),
    path("", include("api.urls")),
]
