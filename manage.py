#!/usr/bin/env python
import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    from django.core.management import execute_from_command_line

    try:
        execute_from_command_line(sys.argv)
    except Exception as error:
        # An operator's command meeting an unreachable or saturated database: one line that says
        # so, not a traceback (every wait on it is bounded; the command can simply be run again).
        from common.outages import database_unavailable

        if not database_unavailable(error):
            raise
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
        sys.exit(f"ensemble: database unavailable: {reason}")


if __name__ == "__main__":
    main()
