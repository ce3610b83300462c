from django.apps import AppConfig, apps
from django.db.models.signals import post_migrate


class StaffConfig(AppConfig):
    """The staff pages and the admin: the face people use in a browser."""

    name = "staff"
    verbose_name = "Staff pages"

    def ready(self) -> None:
        from axes.signals import user_locked_out

        from integration.core import signals
        from staff import live, lockout, teams

        # Live pages look at a process as soon as its trace moves.
        signals.trace_written.connect(live.trace_written, dispatch_uid="staff.live")
        # The teams exist on every install, not only with the demo data. Their permissions are
        # on integration's models, created by its post_migrate (staff has no models of its own,
        # so it gets no post_migrate).
        post_migrate.connect(
            teams.teams_ensure,
            sender=apps.get_app_config("integration"),
            dispatch_uid="staff.teams",
        )
        # Every login lockout goes to the audit log.
        user_locked_out.connect(lockout.lockout_recorded, dispatch_uid="staff.lockout")
