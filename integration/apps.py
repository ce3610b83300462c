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

        from integration import webhooks  # status listener: the shop's webhooks

        webhooks.connect()

        from django.db.models.signals import post_migrate

        from integration import teams

        # The teams exist on every install, not only with the demo data.
        post_migrate.connect(teams.teams_ensure, sender=self, dispatch_uid="integration.teams")
