"""Browser tests: Debian's Chromium (never a downloaded browser) driven by Playwright, against
the real processes — the web server, workers and the scheduler — on this run's test database.
pytest-django's live_server serves no websockets, so the web server is the one operators run."""

from __future__ import annotations

import os
import shutil
import signal
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.contrib.auth.models import Group
from django.test import Client as DjangoClient

from tests.support import flows, processes

SCREENSHOTS = processes.ROOT / "test-artifacts" / "screenshots"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PASSWORD = "a-long-browser-password"
# Short step timeouts, so that a component that is down fails a process within half a minute;
# enough attempts (0.5 + 1 + 2 + 4 + 8 + 16 s) that a component frozen for a moment, or a worker
# still starting, on a machine busy with other suites never does (four attempts, 7.5 s, did).
FAST_RETRIES = {"ORCHESTRATOR_STEP_TIMEOUT": "0.5", "ORCHESTRATOR_MAX_ATTEMPTS": "6"}
OTHER_COMPONENTS = "sales,marketing,correspondence,integration"
TAKEN: list[Path] = []
CONTENT_HEIGHT = """Math.max(
    document.documentElement.scrollHeight,
    ...[...document.querySelectorAll("#content-main, main")].map(
        (el) => el.getBoundingClientRect().bottom + window.scrollY))"""


@dataclass
class Stack:
    """The running product: its address, and crm's worker, which tests stop, start, freeze."""

    base: str
    env: dict[str, str]
    crm: processes.Process | None = None
    frozen: bool = field(default=False)

    def crm_stop(self) -> None:
        self.crm_thaw()
        if self.crm is not None:
            self.crm.stop()
            self.crm = None

    def crm_start(self) -> None:
        if self.crm is None:
            self.crm = flows.start_workers("crm", self.env)

    def crm_freeze(self) -> None:
        """crm stops answering for a moment (its worker is suspended, not stopped)."""
        assert self.crm is not None
        os.killpg(self.crm.popen.pid, signal.SIGSTOP)
        self.frozen = True

    def crm_thaw(self) -> None:
        if self.frozen and self.crm is not None:
            os.killpg(self.crm.popen.pid, signal.SIGCONT)
        self.frozen = False


@pytest.fixture(scope="module")
def stack(child_env: dict[str, str]) -> Iterator[Stack]:
    env = {**child_env, **FAST_RETRIES, "LOOKUP_TIMEOUT": "3"}
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    port = processes.free_port()
    web = processes.start_web(port, env)
    scheduler = processes.start_scheduler(env)
    others = flows.start_workers(OTHER_COMPONENTS, env)
    running = Stack(base=f"http://127.0.0.1:{port}", env=env)
    try:
        running.crm_start()
        processes.wait_for_http(f"{running.base}/healthz", web)
        yield running
    finally:
        running.crm_stop()
        for process in (others, scheduler, web):
            process.stop()


@pytest.fixture(autouse=True)
def fast_retries_here(settings: Any) -> None:
    """Processes started from the test process time their first step like the children do."""
    settings.ORCHESTRATOR_STEP_TIMEOUT = float(FAST_RETRIES["ORCHESTRATOR_STEP_TIMEOUT"])
    settings.ORCHESTRATOR_MAX_ATTEMPTS = int(FAST_RETRIES["ORCHESTRATOR_MAX_ATTEMPTS"])


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    executable = shutil.which("chromium")
    if executable is None:
        pytest.fail("Chromium is not installed: apt-get install chromium (.ci/run does)")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop running in this thread; the ORM calls these
    # tests make between browser steps are plain synchronous code.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
            yield browser
            browser.close()
    finally:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


def staff_member(team: str | None, username: str) -> Any:
    """A staff user in the team. Its password is hashed so that the web process, which runs
    the production settings (not the test run's fast hasher), can check it."""
    user = get_user_model().objects.create(
        username=username,
        is_staff=True,
        password=PBKDF2PasswordHasher().encode(PASSWORD, "browser-salt", iterations=1_000),
    )
    if team is not None:
        user.groups.add(Group.objects.get(name=team))
    return user


@pytest.fixture
def log_in(stack: Stack, chromium: Any) -> Iterator[Callable[..., Any]]:
    """A browser page of a new member of the team: logged in through the form, by keyboard,
    or (`form=False`) with a session made here, to save time where the login is not tested."""
    contexts = []

    def open_page(team: str | None, username: str, *, form: bool = False) -> Any:
        user = staff_member(team, username)
        context = chromium.new_context(viewport={"width": 1280, "height": 900})
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(20_000)
        if form:
            page.goto(f"{stack.base}/accounts/login/")
            page.get_by_label("Username").focus()
            page.keyboard.type(username)
            page.keyboard.press("Tab")
            page.keyboard.type(PASSWORD)
            page.keyboard.press("Enter")
        else:
            session = DjangoClient()
            session.force_login(user)
            cookie = session.cookies[settings.SESSION_COOKIE_NAME].value
            context.add_cookies(
                [{"name": settings.SESSION_COOKIE_NAME, "value": cookie, "url": stack.base}]
            )
            page.goto(f"{stack.base}/")
        page.wait_for_url(f"{stack.base}/")
        return page

    yield open_page
    for context in contexts:
        context.close()


def screenshot(page: Any, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    # The admin scrolls inside its own layout: a page as tall as its content shows all of it.
    viewport = page.viewport_size
    height = page.evaluate(CONTENT_HEIGHT)
    page.set_viewport_size({"width": viewport["width"], "height": min(int(height) + 40, 4000)})
    page.screenshot(path=str(path), full_page=True)
    page.set_viewport_size(viewport)
    TAKEN.append(path)
    print(f"screenshot: {path}")
    return path


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if TAKEN:
        terminalreporter.write_sep("-", f"browser screenshots in {SCREENSHOTS}")
        for path in TAKEN:
            terminalreporter.write_line(str(path))
