from django.urls import path

from integration import views

app_name = "integration"

urlpatterns = [
    path("", views.home, name="home"),
]
