from django.http import HttpRequest, HttpResponse
from django.urls import path
from rest_framework import generics, serializers

from benchmarks.bare.models import Row


class RowSerializer(serializers.ModelSerializer):
    class Meta:
        model = Row
        fields = ["id", "name", "email", "created_at"]


class RowCreate(generics.CreateAPIView):
    queryset = Row._default_manager.all()
    serializer_class = RowSerializer


class RowRetrieve(generics.RetrieveAPIView):
    queryset = Row._default_manager.all()
    serializer_class = RowSerializer


def ping(request: HttpRequest) -> HttpResponse:
    return HttpResponse(b'{"status": "ok"}', content_type="application/json")


urlpatterns = [
    path("rows/", RowCreate.as_view()),
    path("rows/<int:pk>/", RowRetrieve.as_view()),
    path("ping", ping),
]
