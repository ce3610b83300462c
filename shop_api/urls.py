from django.urls import path

from shop_api import views

urlpatterns = [
    path("clients/", views.ClientsView.as_view(), name="api-clients"),
    path("clients/<uuid:client_id>/", views.ClientView.as_view(), name="api-client"),
    path(
        "clients/<uuid:client_id>/purchases/",
        views.PurchasesView.as_view(),
        name="api-client-purchases",
    ),
    path(
        "clients/<uuid:client_id>/erasure/", views.ErasureView.as_view(), name="api-client-erasure"
    ),
    path("processes/<uuid:process_id>/", views.ProcessView.as_view(), name="api-process"),
]
