from django.apps import AppConfig


class IntegrationConfig(AppConfig):
    name = "integration"
    verbose_name = "Integration"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from integration.choreography import handlers
        from integration.core import signals
        from integration.orchestrator import lookups
        from integration.scheduler import jobs  # noqa: F401 - registers the periodic jobs

        handlers.connect()  # integration's own listeners (erasure)
        signals.client_scrubbed.connect(
            lookups.client_scrubbed, dispatch_uid="integration.lookup_answers"
        )
