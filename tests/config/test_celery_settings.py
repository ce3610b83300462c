"""Celery's settings are Django's CELERY_* settings, taken once into a plain mapping when Celery
first reads them (not at import: tests/e2e/test_processes.py has the web server's pool size, which
config/asgi.py sets before Django's settings are read)."""

from __future__ import annotations

from django.conf import settings

from config.celery import CelerySettings, app


def test_celery_has_every_celery_setting_of_django() -> None:
    given = dict(CelerySettings())

    assert set(given) == {name for name in dir(settings) if name.startswith("CELERY_")}
    assert len(given) > 20
    for name, value in given.items():
        assert app.conf[name.removeprefix("CELERY_").lower()] == value, name


def test_a_setting_django_does_not_name_is_celerys_default() -> None:
    assert "CELERY_TASK_ROUTES" not in CelerySettings()
    assert app.conf.task_routes is None
