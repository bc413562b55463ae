"""Database-level guards for promise 3 and helpers that differ between PostgreSQL and SQLite.

Triggers refuse DELETE on every undeletable table (and TRUNCATE on PostgreSQL), and UPDATE on
append-only tables (events, checkpoints). Each app's initial migration installs them with the
``RefuseChanges`` operation; ``install_guards`` runs again after every ``migrate`` because SQLite
rebuilds a table to alter it, which drops its triggers. ``estafeta check`` lists missing ones.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from django.apps import apps
from django.db import connection as default_connection
from django.db import models, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.operations.base import Operation

from .models import UndeletableModel

_PG_FUNCTION = """
CREATE OR REPLACE FUNCTION estafeta_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- The test suite's flush between transactional tests may truncate; nothing else may.
    IF TG_OP = 'TRUNCATE' AND current_setting('estafeta.allow_truncate', true) = 'on' THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION 'estafeta: % on % is refused: its rows are never deleted or rewritten',
        TG_OP, TG_TABLE_NAME USING ERRCODE = 'restrict_violation';
END $$;
"""


def trigger_names(table: str, *, refuse_update: bool) -> list[str]:
    """The guard triggers a table must carry (names are unique per database on SQLite)."""
    names = [f"estafeta_nodelete_{table}"]
    if refuse_update:
        names.append(f"estafeta_noupdate_{table}")
    return names


def guard_sql(vendor: str, table: str, *, refuse_update: bool) -> list[str]:
    q = f'"{table}"'
    if vendor == "sqlite":
        out = [
            f'CREATE TRIGGER IF NOT EXISTS "estafeta_nodelete_{table}" BEFORE DELETE ON {q} '
            f"BEGIN SELECT RAISE(ABORT, 'estafeta: rows of {table} are never deleted'); END"
        ]
        if refuse_update:
            out.append(
                f'CREATE TRIGGER IF NOT EXISTS "estafeta_noupdate_{table}" BEFORE UPDATE ON {q} '
                f"BEGIN SELECT RAISE(ABORT, 'estafeta: rows of {table} are never changed'); END"
            )
        return out
    if vendor == "postgresql":
        out = [_PG_FUNCTION]
        events = [("nodelete", "BEFORE DELETE", "ROW"), ("notruncate", "BEFORE TRUNCATE",
                                                         "STATEMENT")]
        if refuse_update:
            events.append(("noupdate", "BEFORE UPDATE", "ROW"))
        for name, when, level in events:
            trigger = f"estafeta_{name}_{table}"
            out.append(f'DROP TRIGGER IF EXISTS "{trigger}" ON {q}')
            out.append(
                f'CREATE TRIGGER "{trigger}" {when} ON {q} FOR EACH {level} '
                "EXECUTE FUNCTION estafeta_refuse_change()"
            )
        return out
    raise NotImplementedError(f"Estafeta supports PostgreSQL and SQLite, not {vendor}")


def unguard_sql(vendor: str, table: str) -> list[str]:
    names = ["nodelete", "noupdate"] + (["notruncate"] if vendor == "postgresql" else [])
    on = f' ON "{table}"' if vendor == "postgresql" else ""
    return [f'DROP TRIGGER IF EXISTS "estafeta_{n}_{table}"{on}' for n in names]


class RefuseChanges(Operation):
    """Migration operation: install the guard triggers on one table."""

    reversible = True
    reduces_to_sql = True

    def __init__(self, table: str, refuse_update: bool = False) -> None:
        self.table = table
        self.refuse_update = refuse_update

    def deconstruct(self) -> tuple[str, list[Any], dict[str, Any]]:
        kwargs: dict[str, Any] = {"table": self.table}
        if self.refuse_update:
            kwargs["refuse_update"] = True
        return ("estafeta.core.db.RefuseChanges", [], kwargs)

    def state_forwards(self, app_label: str, state: Any) -> None:
        pass

    def database_forwards(self, app_label: str, schema_editor: BaseDatabaseSchemaEditor,
                          from_state: Any, to_state: Any) -> None:
        for sql in guard_sql(schema_editor.connection.vendor, self.table,
                             refuse_update=self.refuse_update):
            schema_editor.execute(sql, params=None)  # no placeholders: '%' is PL/pgSQL's

    def database_backwards(self, app_label: str, schema_editor: BaseDatabaseSchemaEditor,
                           from_state: Any, to_state: Any) -> None:
        for sql in unguard_sql(schema_editor.connection.vendor, self.table):
            schema_editor.execute(sql, params=None)

    def describe(self) -> str:
        what = "DELETE and UPDATE" if self.refuse_update else "DELETE"
        return f"Refuse {what} on {self.table}"


class AllowUpdates(Operation):
    """Migration operation: an append-only table becomes undeletable but updatable (its UPDATE
    guard goes, the DELETE and TRUNCATE guards stay), e.g. so that erasure can empty personal
    data in its rows. Backwards puts the UPDATE guard back."""

    reversible = True
    reduces_to_sql = True

    def __init__(self, table: str) -> None:
        self.table = table

    def deconstruct(self) -> tuple[str, list[Any], dict[str, Any]]:
        return ("estafeta.core.db.AllowUpdates", [], {"table": self.table})

    def state_forwards(self, app_label: str, state: Any) -> None:
        pass

    def database_forwards(self, app_label: str, schema_editor: BaseDatabaseSchemaEditor,
                          from_state: Any, to_state: Any) -> None:
        on = f' ON "{self.table}"' if schema_editor.connection.vendor == "postgresql" else ""
        schema_editor.execute(f'DROP TRIGGER IF EXISTS "estafeta_noupdate_{self.table}"{on}',
                              params=None)
        for sql in guard_sql(schema_editor.connection.vendor, self.table, refuse_update=False):
            schema_editor.execute(sql, params=None)

    def database_backwards(self, app_label: str, schema_editor: BaseDatabaseSchemaEditor,
                           from_state: Any, to_state: Any) -> None:
        for sql in guard_sql(schema_editor.connection.vendor, self.table, refuse_update=True):
            schema_editor.execute(sql, params=None)

    def describe(self) -> str:
        return f"Allow UPDATE on {self.table} (DELETE stays refused)"


def guarded_models() -> list[tuple[type[models.Model], bool]]:
    """(model, refuse_update) for every table promise 3 protects."""
    out = []
    for model in apps.get_models():
        if issubclass(model, UndeletableModel) or getattr(model, "ESTAFETA_UNDELETABLE", False):
            out.append((model, bool(getattr(model, "ESTAFETA_APPEND_ONLY", False))))
    return out


def install_guards(using: BaseDatabaseWrapper | None = None) -> None:
    conn = using or default_connection
    existing = set(conn.introspection.table_names())
    with conn.cursor() as cursor:
        for model, refuse_update in guarded_models():
            if model._meta.db_table not in existing:  # a partial migrate; installed later
                continue
            for sql in guard_sql(conn.vendor, model._meta.db_table, refuse_update=refuse_update):
                cursor.execute(sql)


def missing_guards(using: BaseDatabaseWrapper | None = None) -> list[str]:
    """Names of guard triggers that should exist and do not, as ``table: trigger``."""
    conn = using or default_connection
    with conn.cursor() as cursor:
        if conn.vendor == "sqlite":
            cursor.execute("SELECT tbl_name, name FROM sqlite_master WHERE type = 'trigger'")
        else:
            cursor.execute(
                "SELECT c.relname, t.tgname FROM pg_trigger t "
                "JOIN pg_class c ON c.oid = t.tgrelid WHERE NOT t.tgisinternal"
            )
        present = {(table, name) for table, name in cursor.fetchall()}
    missing = []
    for model, refuse_update in guarded_models():
        table = model._meta.db_table
        names = trigger_names(table, refuse_update=refuse_update)
        if conn.vendor == "postgresql":
            names.append(f"estafeta_notruncate_{table}")
        missing += [f"{table}: {n}" for n in names if (table, n) not in present]
    return missing


def is_postgres(using: BaseDatabaseWrapper | None = None) -> bool:
    return (using or default_connection).vendor == "postgresql"


def tables(names: Iterable[str]) -> str:
    return ", ".join(f'"{n}"' for n in names)


# --- PostgreSQL sequences made on first use -----------------------------------------------------

_known_sequences: set[str] = set()
_SEQUENCE_NAME = re.compile(r"^estafeta_[a-z0-9_]{1,50}$")


def sequence_next(name: str) -> int:
    """``nextval`` of a PostgreSQL sequence, created on first use.

    ``nextval`` never blocks and is never rolled back, so concurrent transactions never wait on
    each other for it (ticket numbers, round-robin turns). The first user of a new sequence takes
    an advisory lock so that concurrent first users create it once.
    """
    if not _SEQUENCE_NAME.match(name):  # it is interpolated below
        raise ValueError(f"bad sequence name {name!r}")
    with default_connection.cursor() as cursor:
        if name not in _known_sequences:
            cursor.execute("SELECT to_regclass(%s)", [name])
            if cursor.fetchone()[0] is None:
                cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [name])
                cursor.execute(f'CREATE SEQUENCE IF NOT EXISTS "{name}"')
            # Remember it only once committed: a rolled-back creation takes the sequence along.
            transaction.on_commit(lambda: _known_sequences.add(name))
        cursor.execute("SELECT nextval(%s)", [name])
        return int(cursor.fetchone()[0])


# --- inserts on hot paths -----------------------------------------------------------------------

_INSERT_SQL: dict[tuple[str, str, tuple[str, ...]], str] = {}


def insert(model: type[models.Model], **values: Any) -> Any:
    """Insert one row and return it as a model instance, with its new id.

    What ``Model.objects.create`` does for these models (each field prepares its own value, as
    Django's insert does; columns left out get their database defaults), minus the query
    compiler: the SQL is built once per model and set of columns. Used where a service writes
    the same rows thousands of times a second (tickets, visits, tasks, events).
    """
    conn = default_connection
    obj = model(**values)  # Python-side defaults filled in, as for create()
    fields: list[models.Field[Any, Any]] = [
        f for f in model._meta.concrete_fields
        if not f.primary_key and (f.name in values or not f.has_db_default())]
    key = (conn.vendor, model._meta.label, tuple(f.name for f in fields))
    sql = _INSERT_SQL.get(key)
    if sql is None:
        quote = conn.ops.quote_name
        columns = ", ".join(quote(str(f.column)) for f in fields)
        pk = quote(str(model._meta.pk.column))
        placeholders = ", ".join(["%s"] * len(fields))
        sql = (f"INSERT INTO {quote(model._meta.db_table)} ({columns}) "
               f"VALUES ({placeholders}) RETURNING {pk}")
        _INSERT_SQL[key] = sql
    params = [f.get_db_prep_save(getattr(obj, f.attname), conn) for f in fields]
    with conn.cursor() as cursor:
        cursor.execute(sql, params)
        obj.pk = cursor.fetchone()[0]
    obj._state.adding = False
    obj._state.db = conn.alias
    return obj


def settle_tables(tables: Iterable[type[models.Model]]) -> None:
    """After writing many rows (PostgreSQL; nothing on SQLite): fresh statistics, or the
    planner misjudges the new rows, and outside a transaction the visibility map too
    (``VACUUM``), without which an index-only scan reads the table for every row of a page
    not yet marked all-visible."""
    if default_connection.vendor != "postgresql":
        return
    command = "ANALYZE" if default_connection.in_atomic_block else "VACUUM (ANALYZE)"
    with default_connection.cursor() as cursor:
        for model in tables:
            cursor.execute(f"{command} {model._meta.db_table}")
