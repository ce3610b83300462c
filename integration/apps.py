from django.apps import AppConfig


class IntegrationConfig(AppConfig):
    name = "integration"
    verbose_name = "Integration"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from integration import details, gateway, jobs, schema  # noqa: F401 - jobs, schema hooks
        from integration.models import IntegrationMode

        gateway.DETAIL_READERS[IntegrationMode.ORCHESTRATION] = details.details_orchestrated
