"""Test-only settings for workers that carry the crash hook (see this package)."""

from config.settings import *  # noqa: F403
from config.settings import INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "tests.support.worker_crash.WorkerCrashConfig"]
