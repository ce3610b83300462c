from django.apps import AppConfig
from django.db.models.signals import post_migrate


class IntegrationConfig(AppConfig):
    name = "integration"
    verbose_name = "Integration"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from integration import (  # noqa: F401 - scheduler jobs, OpenAPI hooks
            choreography,
            details,
            gateway,
            handlers,
            jobs,
            schema,
            teams,
            webhooks,
        )
        from integration.models import IntegrationMode

        gateway.STARTERS[IntegrationMode.CHOREOGRAPHY] = choreography.process_begin
        gateway.DETAIL_READERS[IntegrationMode.ORCHESTRATION] = details.details_orchestrated
        gateway.DETAIL_READERS[IntegrationMode.CHOREOGRAPHY] = details.details_choreographed
        handlers.connect()  # integration's own listeners (erasure)
        webhooks.connect()  # the shop hears when its processes finish
        # The teams exist on every install, not only with the demo data.
        post_migrate.connect(teams.teams_ensure, sender=self, dispatch_uid="integration.teams")
