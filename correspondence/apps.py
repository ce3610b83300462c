from django.apps import AppConfig


class CorrespondenceConfig(AppConfig):
    name = "correspondence"
    verbose_name = "Correspondence"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save

        from correspondence import handlers
        from correspondence.models import Template

        handlers.connect()
        post_save.connect(_template_changed, sender=Template, dispatch_uid="template-saved")
        post_delete.connect(_template_changed, sender=Template, dispatch_uid="template-deleted")


def _template_changed(sender: type, instance: object, **_: object) -> None:
    """Saved or deleted (the admin): this process renders the template anew at once."""
    from correspondence import services

    services.template_forget(key=str(getattr(instance, "pk", "")))
