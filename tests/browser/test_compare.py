"""Operations open the comparison of the two modes in Chromium and see each mode's charts, drawn
on the server as SVG images with their names, on a desktop and on a phone."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from integration.models import Process
from tests.browser.conftest import Stack, screenshot

pytestmark = [
    pytest.mark.browser,
    pytest.mark.processes,
    pytest.mark.django_db(transaction=True),
]


def finished(mode: str, kind: str, seconds: float) -> None:
    made = Process.objects.create(kind=kind, mode=mode, client_id=uuid.uuid4(), status="completed")
    started = timezone.now() - timedelta(minutes=5)
    Process.objects.filter(pk=made.pk).update(
        started_at=started, finished_at=started + timedelta(seconds=seconds)
    )


def test_operations_see_both_modes_charts(stack: Stack, log_in: Callable[..., Any]) -> None:
    for seconds in (1, 2, 4):
        finished("orchestration", "client_registration", seconds)
        finished("choreography", "client_registration", seconds / 2)
    page = log_in("Operations", "operator")

    page.get_by_role("link", name="Compare the two modes on what really ran").click()
    page.wait_for_url(f"{stack.base}/integration/compare/")
    charts = page.locator('svg[role="img"]')
    expect(charts.first).to_be_visible()
    assert charts.count() >= 10
    latency = page.get_by_role("img", name="Latency p50")
    expect(latency).to_be_visible()
    expect(latency.locator("text", has_text="orchestration")).to_have_count(1)
    expect(latency.locator("text", has_text="choreography")).to_have_count(1)
    table = page.get_by_role("table", name="Latency p50")
    expect(table.get_by_role("row", name="Client registration")).to_contain_text("2 s")
    expect(table.get_by_role("row", name="Client registration")).to_contain_text("1 s")

    page.set_viewport_size({"width": 390, "height": 844})
    box = page.get_by_role("region", name="Latency p50, chart and table")
    expect(box).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    screenshot(page, "compare-phone")
