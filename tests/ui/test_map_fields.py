"""The integration map's tables of fields: for each mode, what carries a field and which
components a change to it touches, from the live registries and the steps' declared reads."""

from __future__ import annotations

import ast
import dataclasses
import inspect
import textwrap
from collections.abc import Callable

import pytest
from django.test import Client as Browser

from integration import bus
from integration.events import EVENT_TYPES
from integration.orchestrator.definitions import all_definitions
from staff import pages

pytestmark = pytest.mark.django_db


def by_name(reaches: list[pages.FieldReach]) -> dict[str, pages.FieldReach]:
    return {reach.name: reach for reach in reaches}


def test_orchestrated_a_field_touches_the_orchestrator_and_the_steps_that_read_it() -> None:
    fields = by_name(pages.orchestrated_fields(all_definitions()))

    assert fields["company"].carriers == [
        "client_registration: create_client",
        "client_update: update_client",
    ]
    assert fields["company"].components == ["crm", "integration"]
    assert fields["email"].components == ["correspondence", "crm", "integration", "marketing"]
    assert "purchase: send_receipt (from add_client_value)" in fields["email"].carriers
    assert fields["order_ref"].components == ["correspondence", "integration", "sales"]
    assert fields["client_id"].components == [
        "correspondence",
        "crm",
        "integration",
        "marketing",
        "sales",
    ]


def test_choreographed_a_field_touches_who_publishes_or_hears_the_events_carrying_it() -> None:
    fields = by_name(pages.choreographed_fields())

    for name, reach in fields.items():
        carrying = [
            event
            for event, cls in EVENT_TYPES.items()
            if name in {f.name for f in dataclasses.fields(cls)}
        ]
        assert sorted(reach.carriers) == sorted(carrying), name
        expected = {pages.PUBLISHED_BY[event] for event in carrying} | {
            listener.component for listener in bus.registry() if listener.event in carrying
        }
        assert reach.components == sorted(expected), name
    assert "schema_version" not in fields
    assert fields["order_ref"].carriers == ["PurchaseRequested", "PurchaseRecorded", "ReceiptSent"]


def test_each_step_declares_every_key_its_function_reads() -> None:
    """A string subscript in a step's function names a field of the input, an earlier step, or
    a key of its result: each must be in the step's `reads` (the map relies on them)."""
    for definition in all_definitions():
        for step in definition.steps:
            source = textwrap.dedent(inspect.getsource(step.run))
            keys = {
                node.slice.value
                for node in ast.walk(ast.parse(source))
                if isinstance(node, ast.Subscript)
                and isinstance(node.slice, ast.Constant)
                and isinstance(node.slice.value, str)
            }
            declared = {part for read in step.reads for part in read.split(".")}
            assert keys <= declared, (definition.kind, step.name, keys - declared)


def test_the_map_shows_a_table_of_fields_per_mode(browser_for: Callable[..., Browser]) -> None:
    page = browser_for("Sales").get("/integration-map/").content.decode()

    assert "Orchestration: field → what carries it → components it touches" in page
    assert "Choreography: field → what carries it → components it touches" in page
    assert page.count('<tr data-field="company">') == 2
