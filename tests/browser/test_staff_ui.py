"""The staff UI in a real browser, against the real processes: each team logs in, a marketer
registers a client and watches the process complete without a reload, Customer Relations finds
the client and the welcome email, Operations find a process in the admin and retry a failed
step there. Every page visited has labelled fields, one h1, and is reachable by keyboard."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import expect

from integration import gateway
from integration.models import Process
from tests.browser.conftest import Stack, screenshot
from tests.support import flows

pytestmark = [
    pytest.mark.browser,
    pytest.mark.processes,
    pytest.mark.django_db(transaction=True),
]

TEAM_PAGES = {
    "Marketing": ["Clients", "Register a client", "Campaigns"],
    "Sales": ["Clients"],
    "Customer Relations": ["Clients"],
    "Operations": [],
}
FOCUSABLE = "a[href], button, input:not([type=hidden]), select, textarea"


def main_menu(page: Any) -> Any:
    return page.get_by_role("navigation", name="Main")


def nav_links(page: Any) -> list[str]:
    return [text.strip() for text in main_menu(page).get_by_role("link").all_inner_texts()]


def assert_accessible(page: Any) -> None:
    """Every field has a label, there is one h1, and Tab reaches every control in turn."""
    facts = page.evaluate(
        """(selector) => ({
            unlabelled: [...document.querySelectorAll("input, select, textarea")]
                .filter((el) => el.type !== "hidden" && !(el.labels && el.labels.length))
                .map((el) => el.name || el.id),
            headings: document.querySelectorAll("h1").length,
            controls: [...document.querySelectorAll(selector)].filter(
                (el) => el.offsetParent !== null).length,
        })""",
        FOCUSABLE,
    )
    assert facts["unlabelled"] == [] and facts["headings"] == 1, facts
    page.evaluate("document.activeElement && document.activeElement.blur()")
    page.evaluate("window.scrollTo(0, 0); document.body.focus()")
    reached = set()
    # Twice round (the skip link comes first): a live section re-rendered while we tab sends the
    # focus back to the start of the page, and every control must still be reached.
    for _ in range(2 * facts["controls"] + 4):
        page.keyboard.press("Tab")
        reached.add(page.evaluate("document.activeElement.outerHTML.slice(0, 200)"))
    unreached = page.evaluate(
        """([selector, reached]) => [...document.querySelectorAll(selector)]
            .filter((el) => el.offsetParent !== null)
            .map((el) => el.outerHTML.slice(0, 200))
            .filter((html) => !reached.includes(html))""",
        [FOCUSABLE, sorted(reached)],
    )
    assert unreached == [], unreached


def registered(email: str) -> Process:
    """A client registered through the gateway, as the shop would, and completed."""
    process = gateway.client_register(
        **{
            "email": email,
            "first_name": "Grace",
            "last_name": "Hopper",
            "company": "Compiler Works",
        },
        initiator=gateway.SYSTEM,
    )
    return flows.wait_for_status(process.id, timeout=60)


def test_each_team_logs_in_and_sees_the_pages_it_may_use(log_in: Callable[..., Any]) -> None:
    for team, pages in TEAM_PAGES.items():
        page = log_in(team, team.lower().replace(" ", "-"), form=True)
        assert page.get_by_role("heading", level=1).inner_text() == "Dashboard"
        assert nav_links(page) == ["Dashboard", *pages, "Integration map", "Admin"], team
        assert_accessible(page)
        screenshot(page, f"dashboard-{team.lower().replace(' ', '-')}")
    operations = page
    expect(operations.get_by_role("table", name="Processes by status and mode")).to_be_visible()


def test_a_marketer_registers_a_client_and_watches_the_process_complete_live(
    stack: Stack, log_in: Callable[..., Any]
) -> None:
    page = log_in("Marketing", "marketer")
    main_menu(page).get_by_role("link", name="Register a client").click()
    assert_accessible(page)
    page.get_by_label("Email").fill("grace.hopper@example.com")
    page.get_by_label("First name").fill("Grace")
    page.get_by_label("Last name").fill("Hopper")
    page.get_by_label("Company").fill("Compiler Works")
    page.get_by_label("Marketing consent").check()

    # Given crm is slow to answer, the process is still running when its page opens
    stack.crm_freeze()
    try:
        page.get_by_role("button", name="Register").click()
        page.wait_for_url(f"{stack.base}/processes/*/")
        page.evaluate("window.marker = 'the same page'")
        status = page.locator("[data-status]")
        assert status.count() == 1
        assert (status.get_attribute("data-status"), status.inner_text()) == ("running", "running")
        page.get_by_text("Live: this page updates by itself").wait_for()
        rows_before = page.locator("#trace-rows tr").count()
        screenshot(page, "process-running")
    finally:
        # When crm answers again
        stack.crm_thaw()

    # Then the status changes in place, without a reload
    page.wait_for_selector('[data-status="completed"]', timeout=60_000)
    assert page.evaluate("window.marker") == "the same page"
    assert page.evaluate("performance.getEntriesByType('navigation').length") == 1
    assert page.locator("[data-status]").count() == 1
    assert page.locator("[data-status]").inner_text() == "completed"
    assert page.locator("#trace-rows tr").count() > rows_before
    assert page.locator("#trace-rows").get_by_text("add_to_audience").count() >= 2
    assert_accessible(page)
    screenshot(page, "process-completed")
    process = Process.objects.get()
    assert (process.status, process.initiator_user.username) == ("completed", "marketer")  # type: ignore[union-attr]


def test_customer_relations_finds_the_client_and_sees_the_welcome_email(
    stack: Stack, log_in: Callable[..., Any]
) -> None:
    registered("grace@example.com")
    page = log_in("Customer Relations", "carer")

    main_menu(page).get_by_role("link", name="Clients").click()
    page.get_by_label("Name, email or company").fill("compiler works")
    page.keyboard.press("Enter")
    expect(page.get_by_role("status").filter(has_text="1 client matching")).to_be_visible()
    page.get_by_role("link", name="Grace Hopper").click()

    assert page.get_by_role("heading", level=1).inner_text() == "Grace Hopper"
    communications = page.locator("#communications")
    expect(communications.get_by_text("Welcome to Ensemble, Grace")).to_be_visible()
    assert (
        page.get_by_text("Unavailable").locator("xpath=following-sibling::dd[1]").inner_text()
        == "none"
    )
    assert_accessible(page)
    screenshot(page, "client-details")


def test_operations_find_a_process_in_the_admin_by_its_id(
    stack: Stack, log_in: Callable[..., Any]
) -> None:
    process = registered(f"{uuid.uuid4().hex[:8]}@example.com")
    page = log_in("Operations", "operator")

    page.goto(f"{stack.base}/admin/")
    page.get_by_role("link", name="Processes").first.click()
    page.locator("#searchbar").fill(str(process.id))
    page.keyboard.press("Enter")
    page.get_by_role("link", name=str(process.id)).click()

    expect(page.get_by_role("heading", name="Timeline")).to_be_visible()
    expect(page.locator("svg.sequence")).to_be_visible()
    screenshot(page, "admin-process")


def test_operations_retry_a_failed_step_from_the_admin(
    stack: Stack, log_in: Callable[..., Any]
) -> None:
    page = log_in("Operations", "operator")
    dashboard = page.context.new_page()
    dashboard.goto(f"{stack.base}/")
    dashboard.get_by_text("Live: this page updates by itself").wait_for()
    dashboard.evaluate("window.marker = 'the same page'")

    # Given no worker consumes crm's queue, a registration runs out of attempts
    stack.crm_stop()
    process = gateway.client_register(
        **{"email": "alan@example.com", "first_name": "Alan", "last_name": "Turing"},
        initiator=gateway.SYSTEM,
    )
    flows.wait_for_status(process.id, {"failed"}, timeout=60)
    # The live dashboard shows it, without a reload
    dashboard.locator(".tile-bad").filter(has_text="1 failed step").wait_for(timeout=60_000)
    assert dashboard.evaluate("window.marker") == "the same page"
    screenshot(dashboard, "dashboard-failure")

    # When crm is back and an operator retries the step from the admin
    stack.crm_start()
    page.goto(f"{stack.base}/admin/integration/process/?q={process.id}")
    page.get_by_role("link", name=str(process.id)).click()
    screenshot(page, "admin-failed-process")
    page.get_by_role("button", name="Retry step create_client").click()
    expect(page.get_by_text("Step create_client is being retried.")).to_be_visible()

    # Then the process completes, and its page says so
    page.get_by_role("link", name="Follow this process live on its page").click()
    page.wait_for_selector('[data-status="completed"]', timeout=60_000)
    screenshot(page, "process-retried")
    assert Process.objects.get(pk=process.id).status == "completed"
