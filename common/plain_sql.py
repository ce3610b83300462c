"""Reads on the hot paths (the shop's requests, the orchestrator's steps), in plain SQL.

Building a queryset costs more than running it: for a client's details in choreography the ORM
spent about 4.3 ms of CPU per request composing three small queries that the database answers in
a fraction of that; the same three reads written out take about 1.1 ms. The few reads that every
request of a hot path makes are written out here and in the selectors that use these helpers;
everything else stays with the ORM.

The helpers bind a value as the model's field would and give back what the ORM would: aware
datetimes, UUIDs, on PostgreSQL and SQLite alike.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar
from uuid import UUID

from django.db import DatabaseError, connection, models
from django.utils.dateparse import parse_datetime

M = TypeVar("M", bound=models.Model)


def bound(model: type[models.Model], field: str, value: Any) -> Any:
    """`value` as the database stores `model.field` (a UUID is text on SQLite)."""
    column = model._meta.get_field(field)
    assert isinstance(column, models.Field), f"{field} is not a column"
    return column.get_db_prep_value(value, connection)


def fetch_one(sql: str, params: Sequence[Any]) -> tuple[Any, ...] | None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    return tuple(row) if row is not None else None


def fetch_all(sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [tuple(row) for row in cursor.fetchall()]


def moment(value: datetime | str) -> datetime:
    """A stored timestamp as an aware datetime (SQLite keeps UTC without an offset)."""
    parsed = value if isinstance(value, datetime) else parse_datetime(value)
    if parsed is None:
        raise ValueError(f"not a timestamp: {value!r}")
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def uuid_of(value: UUID | str) -> UUID:
    return value if isinstance(value, UUID) else UUID(value)


def columns(model: type[models.Model], alias: str) -> str:
    """The model's columns, in field order, qualified by `alias`: a SELECT list for `instance`."""
    quote = connection.ops.quote_name
    return ", ".join(f"{alias}.{quote(field.column)}" for field in model._meta.concrete_fields)


def instance(model: type[M], values: Sequence[Any]) -> M:
    """A model instance from a row's values for `columns(model, …)`, converted as the ORM
    converts them (JSON decoded, UUIDs and timestamps parsed on SQLite)."""
    names, converting = _row_plan(model, connection.vendor)
    if len(values) != len(names):
        raise ValueError(f"{model.__name__} has {len(names)} columns, not {len(values)}")
    python = list(values)
    for index, column, converters in converting:
        value = python[index]
        for converter in converters:
            value = converter(value, column, connection)
        python[index] = value
    return model.from_db(connection.alias, names, python)


@functools.cache
def _row_plan(model: type[models.Model], vendor: str) -> tuple[list[str], list[Any]]:
    """The model's attribute names in column order, and the columns that need converting
    (index, column, converters): most need none, and looking that up per value cost more than
    building the instance."""
    fields = model._meta.concrete_fields
    converting = []
    for index, field in enumerate(fields):
        column, converters = _converters(field, vendor)
        if converters:
            converting.append((index, column, converters))
    return [field.attname for field in fields], converting


def orm_value(field: Any, value: Any) -> Any:
    """A column's value as the ORM gives it for `field`."""
    column, converters = _converters(field, connection.vendor)
    for converter in converters:
        value = converter(value, column, connection)
    return value


@functools.cache
def _converters(field: Any, vendor: str) -> tuple[Any, list[Any]]:
    """What the ORM applies to a column of `field` read from `vendor` (kept: finding them is
    most of the cost of converting a value; they take the connection as an argument)."""
    column = field.get_col(field.model._meta.db_table)
    return column, connection.ops.get_db_converters(column) + column.get_db_converters(connection)


def insert_all(instances: Sequence[models.Model], *, rows_per_statement: int = 100) -> None:
    """Insert new instances of one model with one multi-row INSERT (per hundred rows), where
    `bulk_create` composes an UNNEST and reads every id back. Auto ids stay unset (rows written
    once and only read back later, as trace entries); instances with their own keys (UUIDs) are
    then saved rows, as after `bulk_create`. No model signal is sent."""
    if not instances:
        return
    meta = instances[0]._meta
    fields = [field for field in meta.concrete_fields if field is not meta.auto_field]
    fields = [field for field in fields if not field.generated]
    quote = connection.ops.quote_name
    columns = ", ".join(quote(field.column) for field in fields)
    row = "(" + ", ".join(["%s"] * len(fields)) + ")"
    for start in range(0, len(instances), rows_per_statement):
        chunk = instances[start : start + rows_per_statement]
        values = [
            field.get_db_prep_save(_value_to_insert(field, instance), connection)
            for instance in chunk
            for field in fields
        ]
        sql = (
            f"INSERT INTO {quote(meta.db_table)} ({columns}) VALUES {', '.join([row] * len(chunk))}"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, values)
    for instance in instances:
        if instance.pk is not None:
            instance._state.adding = False
            instance._state.db = connection.alias


def _value_to_insert(field: Any, instance: models.Model) -> Any:
    """As the ORM inserts it, but a creation time already given is kept: an instance written
    some moments after it was begun (a process, at the end of its first trace batch) keeps when
    it began."""
    if getattr(field, "auto_now_add", False):
        given = getattr(instance, field.attname)
        if given is not None:
            return given
    return field.pre_save(instance, add=True)


def insert_unless_taken(instance: models.Model) -> bool:
    """Insert a new model instance unless a unique index already holds its key: one
    `INSERT … ON CONFLICT DO NOTHING`, and whether the row went in.

    Where a unique insert decides (a replayed message, a second copy of a step), this replaces
    `get_or_create` and `save()` inside `try/except IntegrityError`: those need a savepoint (two
    more statements, each a round trip) so that the caller's transaction survives the refusal;
    this statement cannot fail on a conflict. Generated columns are left to the database, and no
    model signal is sent.
    """
    meta = instance._meta
    fields = [field for field in meta.concrete_fields if not field.generated]
    quote = connection.ops.quote_name
    columns = ", ".join(quote(field.column) for field in fields)
    placeholders = ", ".join(["%s"] * len(fields))
    values = [
        field.get_db_prep_save(field.pre_save(instance, add=True), connection) for field in fields
    ]
    sql = (
        f"INSERT INTO {quote(meta.db_table)} ({columns}) VALUES ({placeholders})"
        " ON CONFLICT DO NOTHING RETURNING 1"
    )
    inserted = fetch_one(sql, values) is not None
    if inserted:
        instance._state.adding = False
        instance._state.db = connection.alias
    return inserted


def insert_or_advance(instance: models.Model, *, version: str = "client_version") -> bool:
    """Insert a copy keyed by its primary key, or bring the row that holds the key to this
    instance's values when its `version` is older: one `INSERT … ON CONFLICT … DO UPDATE …
    WHERE`. Whether the row was written (False: it held this version or a newer one).

    For the replicas that copy a client by its version: an update first and an insert when it
    found nothing took two statements for every new client, and the upsert decides in one,
    without a savepoint, a concurrent first copy waiting on the key's index.
    """
    meta = instance._meta
    fields = [field for field in meta.concrete_fields if not field.generated]
    values = [
        field.get_db_prep_save(field.pre_save(instance, add=True), connection) for field in fields
    ]
    return fetch_one(_advance_sql(type(instance), version, connection.vendor), values) is not None


def upsert(instance: models.Model) -> None:
    """Insert the instance, or overwrite the row that holds its primary key with its values: one
    `INSERT … ON CONFLICT … DO UPDATE`, where `update_or_create` took a savepoint, a read and a
    write (three savepoints, seven statements, inside a caller's transaction)."""
    meta = instance._meta
    fields = [field for field in meta.concrete_fields if not field.generated]
    values = [
        field.get_db_prep_save(field.pre_save(instance, add=True), connection) for field in fields
    ]
    with connection.cursor() as cursor:
        cursor.execute(_advance_sql(type(instance), None, connection.vendor), values)


@functools.cache
def _advance_sql(model: type[models.Model], version: str | None, vendor: str) -> str:
    """The upsert by primary key; with `version`, only over a row of an older version."""
    meta = model._meta
    quote = connection.ops.quote_name
    fields = [field for field in meta.concrete_fields if not field.generated]
    key = quote(meta.pk.column)
    table = quote(meta.db_table)
    written = ", ".join(quote(field.column) for field in fields)
    moved = ", ".join(
        f"{quote(field.column)} = excluded.{quote(field.column)}"
        for field in fields
        if not field.primary_key
    )
    sql = (
        f"INSERT INTO {table} ({written}) VALUES ({', '.join(['%s'] * len(fields))}) "
        f"ON CONFLICT ({key}) DO UPDATE SET {moved}"
    )
    if version is None:
        return sql
    older = f"{table}.{quote(_column(model, version))} < excluded.{quote(_column(model, version))}"
    return f"{sql} WHERE {older} RETURNING 1"


def locked(model: type[M], pk: Any) -> M:
    """`model.objects.select_for_update().get(pk=pk)` written out: the row, locked until the
    transaction ends (SQLite: the whole database is); DoesNotExist when there is none."""
    return _by_pk(model, pk, lock=True)


def get(model: type[M], pk: Any) -> M:
    """`model.objects.get(pk=pk)` written out; DoesNotExist when there is none."""
    return _by_pk(model, pk, lock=False)


def _by_pk(model: type[M], pk: Any, *, lock: bool) -> M:
    key = model._meta.pk.get_db_prep_value(pk, connection)
    row = fetch_one(_by_pk_sql(model, connection.vendor, lock), [key])
    if row is None:
        raise model.DoesNotExist(f"no {model._meta.object_name} {pk}")  # type: ignore[attr-defined]
    return instance(model, row)


@functools.cache
def _by_pk_sql(model: type[models.Model], vendor: str, lock: bool) -> str:
    locking = " FOR UPDATE" if lock and connection.features.has_select_for_update else ""
    table = connection.ops.quote_name(model._meta.db_table)
    key = connection.ops.quote_name(model._meta.pk.column)
    return f"SELECT {columns(model, 't')} FROM {table} t WHERE t.{key} = %s{locking}"


def update(instance: models.Model, fields: Sequence[str]) -> None:
    """`instance.save(update_fields=fields)` as one UPDATE written out: values prepared as the
    ORM prepares them (auto_now fields among `fields` move on), and the same DatabaseError when
    the row is gone. For the saves every step, delivery and email makes: composing the ORM's
    UPDATE cost more CPU than the database spends running it. No model signal is sent."""
    meta = instance._meta
    names = tuple(fields)
    targets = [meta.get_field(name) for name in names]
    values = [
        target.get_db_prep_save(target.pre_save(instance, add=False), connection)  # type: ignore[union-attr]
        for target in targets
    ]
    key = meta.pk.get_db_prep_value(instance.pk, connection)
    with connection.cursor() as cursor:
        cursor.execute(_update_sql(type(instance), names, connection.vendor), [*values, key])
        if cursor.rowcount == 0:
            raise DatabaseError(f"{meta.object_name} {instance.pk} is gone: nothing was updated")


@functools.cache
def _update_sql(model: type[models.Model], names: tuple[str, ...], vendor: str) -> str:
    meta = model._meta
    quote = connection.ops.quote_name
    assignments = ", ".join(f"{quote(_column(model, name))} = %s" for name in names)
    return f"UPDATE {quote(meta.db_table)} SET {assignments} WHERE {quote(meta.pk.column)} = %s"


def _column(model: type[models.Model], name: str) -> str:
    field = model._meta.get_field(name)
    assert isinstance(field, models.Field) and field.column, f"{name} is not a column"
    return field.column
