"""Seed the two emails the processes send. Existing rows (edited by staff) are left alone."""

from django.db import migrations

from correspondence.defaults import DEFAULT_TEMPLATES as TEMPLATES


def seed(apps, schema_editor):
    Template = apps.get_model("correspondence", "Template")
    for key, fields in TEMPLATES.items():
        Template.objects.get_or_create(key=key, defaults=fields)


def unseed(apps, schema_editor):
    Template = apps.get_model("correspondence", "Template")
    Template.objects.filter(key__in=TEMPLATES).delete()


class Migration(migrations.Migration):
    dependencies = [("correspondence", "0001_initial")]

    operations = [migrations.RunPython(seed, unseed)]
