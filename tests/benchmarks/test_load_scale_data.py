"""`manage.py load_scale_data` on small numbers: shapes, proportions, idempotence, top-up."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from correspondence.models import Recipient
from crm.models import Client
from integration.models import Process, RegisteredEmail, Step, TraceEntry
from marketing.models import AudienceMember
from sales.models import CustomerReplica

pytestmark = pytest.mark.django_db


def load(clients: int, processes: int, entries: int) -> str:
    out = io.StringIO()
    call_command(
        "load_scale_data",
        clients=clients,
        processes=processes,
        trace_entries=entries,
        stdout=out,
    )
    return out.getvalue()


def test_it_loads_exactly_the_numbers_asked_with_replicas_at_the_clients_versions() -> None:
    load(50, 100, 1000)

    assert Client.objects.count() == 50
    assert Process.objects.count() == 100
    assert TraceEntry.objects.count() == 1000
    assert RegisteredEmail.objects.count() == 50
    versions = dict(Client.objects.values_list("id", "version"))
    assert dict(CustomerReplica.objects.values_list("client_id", "client_version")) == versions
    assert dict(Recipient.objects.values_list("client_id", "client_version")) == versions
    consenting = set(Client.objects.filter(marketing_consent=True).values_list("id", flat=True))
    assert set(AudienceMember.objects.values_list("client_id", flat=True)) == consenting


def test_processes_are_mixed_and_their_traces_add_up() -> None:
    load(50, 100, 1000)

    assert Process.objects.filter(kind="client_registration").count() == 50
    assert set(Process.objects.values_list("mode", flat=True)) == {
        "orchestration",
        "choreography",
    }
    assert Process.objects.exclude(kind="client_registration").exists()
    assert Step.objects.filter(process__mode="orchestration").exists()
    for process in Process.objects.all()[:20]:
        assert process.trace.count() == process.trace_count == 10


def test_a_second_run_adds_nothing_and_larger_numbers_top_up() -> None:
    load(50, 100, 1000)

    assert "nothing to do" in load(50, 100, 1000)
    assert Client.objects.count() == 50

    load(80, 160, 1600)
    assert (Client.objects.count(), Process.objects.count(), TraceEntry.objects.count()) == (
        80,
        160,
        1600,
    )


def test_impossible_proportions_are_refused() -> None:
    with pytest.raises(CommandError):
        load(50, 10, 1000)


@pytest.mark.postgresql
@pytest.mark.django_db(transaction=True)
def test_the_process_tally_is_left_at_its_size_not_with_a_dead_row_per_process_loaded() -> None:
    from django.db import connection

    load(200, 4000, 8000)

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*), pg_relation_size('integration_processtally') / 8192"
            " FROM integration_processtally"
        )
        rows, pages = cursor.fetchone()
    # a handful of keys (by kind, mode, status and duration bucket) in a page or two, where the
    # 4,000 rows the triggers wrote took 47
    assert rows < 100
    assert pages <= 2
