from django.apps import AppConfig


class ShopApiConfig(AppConfig):
    """The shop's REST API: the face the online shop drives the processes through."""

    name = "shop_api"
    verbose_name = "Shop API"

    def ready(self) -> None:
        from integration.core import signals
        from shop_api import idempotency, jobs, schema, webhooks  # noqa: F401 - schema, jobs

        # The shop hears when the processes it started finish.
        signals.process_status_changed.connect(
            webhooks.process_status_changed, dispatch_uid="shop_api.webhooks"
        )
        # Erasure forgets the answers saved for the client's requests.
        signals.client_scrubbed.connect(
            idempotency.client_scrubbed, dispatch_uid="shop_api.idempotency"
        )
