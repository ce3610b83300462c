from django.apps import AppConfig


class MetricsConfig(AppConfig):
    """The face for machines that scrape: `/metrics` in Prometheus's text format."""

    name = "metrics"
    verbose_name = "Metrics"
