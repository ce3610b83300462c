from django.apps import AppConfig


class IntegrationConfig(AppConfig):
    name = "integration"
    verbose_name = "Integration"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from integration import choreography, details, gateway, handlers, jobs, schema  # noqa: F401 - scheduler jobs, OpenAPI hooks
        from integration.models import IntegrationMode

        gateway.STARTERS[IntegrationMode.CHOREOGRAPHY] = choreography.process_begin
        gateway.DETAIL_READERS[IntegrationMode.ORCHESTRATION] = details.details_orchestrated
        gateway.DETAIL_READERS[IntegrationMode.CHOREOGRAPHY] = details.details_choreographed
        handlers.connect()
