"""Celery's settings are Django's CELERY_* settings, read once into a plain mapping."""

from __future__ import annotations

from django.conf import settings

from config.celery import app, celery_settings


def test_celery_has_every_celery_setting_of_django() -> None:
    given = celery_settings()

    assert set(given) == {name for name in dir(settings) if name.startswith("CELERY_")}
    assert len(given) > 20
    for name, value in given.items():
        assert app.conf[name.removeprefix("CELERY_").lower()] == value, name


def test_a_setting_django_does_not_name_is_celerys_default() -> None:
    assert "CELERY_TASK_ROUTES" not in celery_settings()
    assert app.conf.task_routes is None
