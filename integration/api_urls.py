from django.urls import path

from integration import apis

urlpatterns = [
    path("clients/", apis.ClientsView.as_view(), name="api-clients"),
    path("clients/<uuid:client_id>/", apis.ClientView.as_view(), name="api-client"),
    path(
        "clients/<uuid:client_id>/purchases/",
        apis.PurchasesView.as_view(),
        name="api-client-purchases",
    ),
    path(
        "clients/<uuid:client_id>/erasure/", apis.ErasureView.as_view(), name="api-client-erasure"
    ),
    path("processes/<uuid:process_id>/", apis.ProcessView.as_view(), name="api-process"),
]
