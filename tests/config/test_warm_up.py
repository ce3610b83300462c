"""A server process compiles Django's email patterns while it starts, not on its first request or
task (common/warm_up.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from celery import signals

from config import celery as celery_config

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import django, os
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django.setup()
from django.core.validators import EmailValidator
from django.utils.functional import empty
compiled = lambda: [EmailValidator.user_regex._wrapped is not empty,
                    EmailValidator.domain_regex._wrapped is not empty]
before = compiled()
from common.warm_up import compile_lazy_patterns
compile_lazy_patterns()
print(before, compiled())
"""


def test_the_email_patterns_are_compiled_by_the_warm_up_and_not_before() -> None:
    probe = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=ROOT,
        env={"DEBUG": "1", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.strip().splitlines()[-1] == "[False, False] [True, True]"


def test_a_worker_warms_up_in_its_main_process_before_it_forks() -> None:
    receivers = [receiver() for _, receiver in signals.worker_init.receivers]
    assert celery_config._warm_up in receivers
