"""Every staff page in Chromium, on a phone (390 px) and a desktop (1280 px): axe-core finds no
serious or critical violation, and on a phone nothing scrolls the page sideways. Customer
Relations changes a client, then erases one, and lands on each process's page.

axe-core is the npm package's own build, kept in tests/browser/vendor/axe-core with its
licence (MPL-2.0): the browser loads it from disk, never from the network."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model
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

AXE = Path(__file__).parent / "vendor" / "axe-core" / "axe.min.js"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}
WIDTHS = {"phone": PHONE, "desktop": DESKTOP}
RUN_AXE = """async () => {
    const results = await axe.run(document, {resultTypes: ["violations"]});
    return results.violations
        .filter((violation) => ["serious", "critical"].includes(violation.impact))
        .map((violation) => ({
            id: violation.id,
            impact: violation.impact,
            help: violation.help,
            nodes: violation.nodes.slice(0, 5).map((node) => node.target.join(" ")),
        }));
}"""
SIDEWAYS = """() => ({
    page: document.documentElement.scrollWidth,
    window: window.innerWidth,
    widest: [...document.querySelectorAll("body *")]
        .filter((el) => el.getBoundingClientRect().right > window.innerWidth + 1)
        .filter((el) => !el.closest(".table-scroll, .diagram"))
        .slice(0, 5)
        .map((el) => el.outerHTML.slice(0, 120)),
})"""


def registered(email: str, **profile: str) -> Process:
    """A client registered as the shop would, and completed."""
    process = gateway.client_register(
        **{
            "email": email,
            "first_name": "Grace",
            "last_name": "Hopper",
            "company": "Compiler Works",
            "phone": "+1 555 0100",
            **profile,
        },
        initiator=gateway.SYSTEM,
    )
    return flows.wait_for_status(process.id, timeout=60)


def serious_violations(page: Any) -> list[dict[str, Any]]:
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE))
    return list(page.evaluate(RUN_AXE))


def sideways_scroll(page: Any) -> dict[str, Any] | None:
    facts = page.evaluate(SIDEWAYS)
    return None if facts["page"] <= facts["window"] else facts


def check_page(page: Any, url: str, *, name: str, phone_layout: bool = True) -> list[str]:
    """What is wrong with the page at either width (nothing, when all is well)."""
    problems = []
    for width, viewport in WIDTHS.items():
        page.set_viewport_size(viewport)
        page.goto(url)
        page.wait_for_load_state("load")
        violations = serious_violations(page)
        if violations:
            problems.append(f"{name} at {width}: {violations}")
        if width == "phone" and phone_layout:
            overflow = sideways_scroll(page)
            if overflow:
                problems.append(f"{name} scrolls sideways at 390 px: {overflow}")
    return problems


def superuser_page(log_in: Callable[..., Any]) -> Any:
    """One login that may open every page (the superuser: every link, the widest menu)."""
    page = log_in(None, "root")
    get_user_model().objects.filter(username="root").update(is_superuser=True)
    page.reload()
    return page


def test_every_staff_page_passes_axe_and_fits_a_phone(
    stack: Stack, log_in: Callable[..., Any], chromium: Any
) -> None:
    process = registered("grace@example.com")
    client_id = process.client_id
    page = superuser_page(log_in)
    base = stack.base
    staff_pages = {
        "dashboard": "/",
        "client search": "/clients/?q=grace",
        "client details": f"/clients/{client_id}/",
        "registration": "/clients/new/",
        "client change": f"/clients/{client_id}/edit/",
        "client erasure": f"/clients/{client_id}/erase/",
        "purchase": f"/clients/{client_id}/purchases/new/",
        "communication": f"/clients/{client_id}/communications/new/",
        "process": f"/processes/{process.id}/",
        "integration map": "/integration-map/",
        "mode comparison": "/integration/compare/",
        "campaigns": "/marketing/campaigns/",
        "new campaign": "/marketing/campaigns/new/",
    }
    admin_pages = {
        "admin processes": "/admin/integration/process/",
        "admin process": f"/admin/integration/process/{process.id}/change/",
    }

    problems = []
    for name, path in staff_pages.items():
        problems += check_page(page, f"{base}{path}", name=name)
    for name, path in admin_pages.items():
        problems += check_page(page, f"{base}{path}", name=name, phone_layout=False)

    # The pages a member of a team sees differently: the dashboard of one who follows only
    # their own processes, and the login page of someone not logged in yet.
    marketer = log_in("Marketing", "marketer")
    problems += check_page(marketer, f"{base}/", name="marketing dashboard")
    stranger = chromium.new_context().new_page()
    problems += check_page(stranger, f"{base}/accounts/login/", name="login")
    stranger.context.close()

    assert not problems, "\n".join(problems)


def test_on_a_phone_the_menu_wraps_on_the_dark_header_and_log_out_is_reachable(
    stack: Stack, log_in: Callable[..., Any]
) -> None:
    page = superuser_page(log_in)
    page.set_viewport_size(PHONE)
    page.goto(f"{stack.base}/")

    header = page.locator(".site-header").bounding_box()
    header_bottom = header["y"] + header["height"]
    for link in page.get_by_role("navigation", name="Main").get_by_role("link").all():
        box = link.bounding_box()
        on_screen = box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
        on_the_header = header["y"] <= box["y"] and box["y"] + box["height"] <= header_bottom
        assert on_screen and on_the_header, link.inner_text()
    log_out = page.get_by_role("button", name="Log out")
    box = log_out.bounding_box()
    assert box["x"] + box["width"] <= PHONE["width"]
    screenshot(page, "dashboard-phone")
    log_out.click()
    page.wait_for_url("**/accounts/login/**")


def test_a_wide_table_scrolls_in_its_own_box_by_keyboard(
    stack: Stack, log_in: Callable[..., Any]
) -> None:
    process = registered(f"{uuid.uuid4().hex[:8]}@example.com")
    page = superuser_page(log_in)
    page.set_viewport_size(PHONE)
    page.goto(f"{stack.base}/processes/{process.id}/")

    trace = page.get_by_role("region", name="Trace table")
    assert trace.evaluate("(box) => box.scrollWidth > box.clientWidth")
    trace.focus()
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    page.wait_for_function("document.activeElement.scrollLeft > 0")
    assert sideways_scroll(page) is None
    screenshot(page, "process-phone")


def test_customer_relations_change_a_client_and_follow_the_update(
    stack: Stack, log_in: Callable[..., Any]
) -> None:
    process = registered("grace.change@example.com")
    page = log_in("Customer Relations", "carer")
    page.goto(f"{stack.base}/clients/{process.client_id}/")

    page.get_by_role("link", name="Change the details").click()
    expect(page.get_by_label("Email")).to_have_value("grace.change@example.com")
    expect(page.get_by_label("First name")).to_have_value("Grace")
    page.get_by_label("Phone").fill("+1 555 0199")
    page.get_by_label("Marketing consent").check()
    screenshot(page, "client-change")
    page.get_by_role("button", name="Save the changes").click()

    page.wait_for_url(f"{stack.base}/processes/*/")
    update = Process.objects.get(kind="client_update")
    assert page.url == f"{stack.base}/processes/{update.id}/"
    assert update.input == {"phone": "+1 555 0199", "marketing_consent": True}
    flows.wait_for_status(update.id, timeout=60)  # fails with the process's trace
    page.wait_for_selector('[data-status="completed"]', timeout=20_000)

    page.get_by_role("link", name=str(process.client_id)).click()
    expect(page.get_by_text("+1 555 0199")).to_be_visible()


def test_customer_relations_erase_a_client_after_confirming(
    stack: Stack, log_in: Callable[..., Any]
) -> None:
    process = registered("grace.erase@example.com")
    page = log_in("Customer Relations", "carer")
    page.goto(f"{stack.base}/clients/{process.client_id}/")

    page.get_by_role("link", name="Erase this client").click()
    assert page.get_by_role("heading", level=1).inner_text() == "Erase Grace Hopper"
    page.get_by_role("button", name="Erase Grace Hopper").click()
    expect(page.get_by_text("Tick the box to confirm the erasure.")).to_be_visible()
    assert not Process.objects.filter(kind="client_erasure").exists()

    page.get_by_label("I understand that erasing this client cannot be undone").check()
    page.get_by_role("button", name="Erase Grace Hopper").click()

    page.wait_for_url(f"{stack.base}/processes/*/")
    erasure = Process.objects.get(kind="client_erasure")
    assert page.url == f"{stack.base}/processes/{erasure.id}/"
    page.wait_for_selector('[data-status="completed"]', timeout=60_000)
    screenshot(page, "client-erased")
    assert page.goto(f"{stack.base}/clients/{process.client_id}/").status == 404
