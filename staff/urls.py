from django.urls import path

from staff import views

app_name = "integration"

urlpatterns = [
    path("", views.dashboard, name="home"),
    path("clients/", views.client_search, name="clients"),
    path("clients/new/", views.client_new, name="client-new"),
    path("clients/export.csv", views.client_export, name="clients-export"),
    path("clients/<uuid:client_id>/", views.client_detail, name="client"),
    path("clients/<uuid:client_id>/edit/", views.client_edit, name="client-edit"),
    path("clients/<uuid:client_id>/erase/", views.client_erase, name="client-erase"),
    path("clients/<uuid:client_id>/purchases/new/", views.purchase_new, name="purchase-new"),
    path(
        "clients/<uuid:client_id>/communications/new/",
        views.communication_new,
        name="communication-new",
    ),
    path("processes/<uuid:process_id>/", views.process_detail, name="process"),
    path("integration-map/", views.integration_map, name="map"),
    path("integration/compare/", views.integration_compare, name="compare"),
    # Browsers ask for /favicon.ico whatever the page says: answer with the app's icon.
    path("favicon.ico", views.favicon, name="favicon"),
]
