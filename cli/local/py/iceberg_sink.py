"""firehose-local's Iceberg writer: real Apache Iceberg tables (format v2)
in a catalog on local disk (pyiceberg's SQL catalog over SQLite), written by
pyiceberg, as Firehose's Iceberg destination writes Glue's.

One request per line on stdin, one JSON answer per line on stdout:

  {"op": "create", "namespace": N, "table": T, "fields": [{"id", "name", "type", "required", "doc"}],
   "identifier": [names], "partition": [{"source", "transform", "name"}]}
      -> {"ok": true}                       (the table as given, unless it exists)
  {"op": "upsert" | "append", "namespace": N, "table": T, "rows": [{...}], "keys": [names]}
      -> {"ok": true, "written": n, "inserted": i, "updated": u, "refused": [{"index", "code", "message"}]}

An upsert is Firehose's "update" with unique keys: a row whose key is in the
table already replaces it, else it is added; of a batch's rows with one key
the last wins (Firehose applies a stream's records in order). It runs as one
transaction: the rows the batch changes are deleted and the batch's new and
changed rows appended in one commit, so a reader sees all of it or none, and
a batch written twice leaves the table as once. A row that does not fit the
table's schema (a member it has no column for, a value of another type, a
missing key) is refused by its index, the rest written.

pyiceberg's own Table.upsert matches rows with one predicate branch per row,
which for a two-column key takes tens of seconds a thousand rows; the match
here is one In() per key id. Everything written to disk is pyiceberg's.

Upkeep, as a table Firehose writes needs it too (compaction and snapshot
expiry are the owner's job for self-managed tables): pyiceberg 0.12 deletes
copy-on-write, and the cost of each delete grows with the table's files and
snapshots, so after each write a day partition holding COMPACT_AT files or
more is rewritten as one, and snapshots past the last KEEP_SNAPSHOTS are
expired. Without it an upsert slows from under a second to twenty after
about a hundred batches.
"""

import argparse
import datetime as dt
import json
import os
import sys

import pyarrow as pa
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.exceptions import CommitFailedException, NoSuchTableError
from pyiceberg.expressions import AlwaysFalse, And, EqualTo, GreaterThanOrEqual, In, LessThan, Or
from pyiceberg.partitioning import PartitionField, PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.transforms import DayTransform, HourTransform, IdentityTransform, MonthTransform
from pyiceberg.types import IntegerType, LongType, NestedField, StringType, TimestamptzType

TYPES = {"string": StringType, "long": LongType, "int": IntegerType, "timestamptz": TimestamptzType}
TRANSFORMS = {"identity": IdentityTransform, "day": DayTransform, "hour": HourTransform, "month": MonthTransform}
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
# Upkeep after each write (see above).
COMPACT_AT = 8
KEEP_SNAPSHOTS = 10


def catalog(warehouse):
    warehouse = os.path.abspath(warehouse)
    os.makedirs(warehouse, exist_ok=True)
    return SqlCatalog("edgehose", uri=f"sqlite:///{warehouse}/catalog.db", warehouse=f"file://{warehouse}")


class Refused(ValueError):
    def __init__(self, code, message):
        super().__init__(message)
        self.code = code


def value(v, field):
    """A JSON value as pyarrow takes it for the field's Iceberg type."""
    t = field.field_type
    if v is None:
        if field.required:
            raise Refused("Iceberg.MissingRequiredColumn", f"{field.name} is part of the unique key and is missing")
        return None
    if isinstance(t, StringType):
        if not isinstance(v, str):
            raise Refused("Iceberg.SchemaMismatch", f"{field.name} is a string column; the row has {json.dumps(v)}")
        return v
    if isinstance(t, (LongType, IntegerType, TimestamptzType)):
        if isinstance(v, bool) or not isinstance(v, int):
            raise Refused("Iceberg.SchemaMismatch", f"{field.name} is {t}; the row has {json.dumps(v)}")
        # Firehose takes a timestamp as microseconds since the epoch.
        return EPOCH + dt.timedelta(microseconds=v) if isinstance(t, TimestamptzType) else v
    raise Refused("Iceberg.SchemaMismatch", f"{field.name}: type {t} is not written by edgehose")


def arrow(rows, schema):
    columns = {f.name: [] for f in schema.fields}
    for row in rows:
        for f in schema.fields:
            columns[f.name].append(value(row.get(f.name), f))
    return pa.Table.from_pydict(columns, schema=schema.as_arrow())


def upkeep(table):
    """Rewrites each day partition of COMPACT_AT files or more as one file,
    then expires all but the last KEEP_SNAPSHOTS snapshots."""
    days = {}
    for f in table.inspect.files().select(["partition", "content"]).to_pylist():
        if f["content"] == 0 and f["partition"]:
            day = next(iter(f["partition"].values()))
            days[day] = days.get(day, 0) + 1
    time = table.schema().find_column_name(table.spec().fields[0].source_id) if table.spec().fields else None
    for day, files in days.items():
        if files < COMPACT_AT or day is None or time is None:
            continue
        start = dt.datetime.combine(day, dt.time(), dt.timezone.utc) if isinstance(day, dt.date) else EPOCH + dt.timedelta(days=day)
        whole_day = And(GreaterThanOrEqual(time, start.isoformat()), LessThan(time, (start + dt.timedelta(days=1)).isoformat()))
        # The filter is the partition's own: whole files are replaced, none rewritten row by row.
        table.overwrite(table.scan(row_filter=whole_day).to_arrow(), overwrite_filter=whole_day)
    snapshots = sorted(table.snapshots(), key=lambda s: s.timestamp_ms)
    current = table.current_snapshot()
    old = [s.snapshot_id for s in snapshots[:-KEEP_SNAPSHOTS] if current is None or s.snapshot_id != current.snapshot_id]
    if old:
        table.maintenance.expire_snapshots().by_ids(old).commit()


def matching(keys, tuples):
    """A predicate true of the rows whose key is one of `tuples`: an In()
    over the last key column per value of the others."""
    if not tuples:
        return AlwaysFalse()

    def build(level, group):
        name = keys[level]
        if level == len(keys) - 1:
            values = {t[level] for t in group}
            return EqualTo(name, next(iter(values))) if len(values) == 1 else In(name, values)
        by = {}
        for t in group:
            by.setdefault(t[level], []).append(t)
        parts = [And(EqualTo(name, v), build(level + 1, g)) for v, g in by.items()]
        return parts[0] if len(parts) == 1 else Or(*parts)

    return build(0, list(tuples))


class Writer:
    def __init__(self, warehouse):
        self.catalog = catalog(warehouse)
        self.tables = {}

    def table(self, namespace, name):
        key = (namespace, name)
        if key not in self.tables:
            self.tables[key] = self.catalog.load_table(key)
        return self.tables[key]

    def create(self, req):
        namespace, name = req["namespace"], req["table"]
        self.catalog.create_namespace_if_not_exists(namespace)
        try:
            self.catalog.load_table((namespace, name))
            return {"ok": True, "created": False}
        except NoSuchTableError:
            pass
        fields = [
            NestedField(f["id"], f["name"], TYPES[f["type"]](), required=f["required"], doc=f.get("doc") or None)
            for f in req["fields"]
        ]
        by_name = {f.name: f for f in fields}
        schema = Schema(*fields, identifier_field_ids=[by_name[n].field_id for n in req["identifier"]])
        spec = PartitionSpec(
            *[
                PartitionField(by_name[p["source"]].field_id, 1000 + i, TRANSFORMS[p["transform"]](), p["name"])
                for i, p in enumerate(req.get("partition") or [])
            ]
        )
        self.catalog.create_table(
            (namespace, name),
            schema=schema,
            partition_spec=spec,
            properties={
                "format-version": "2",
                # Old metadata files go as new ones are written.
                "write.metadata.delete-after-commit.enabled": "true",
                "write.metadata.previous-versions-max": str(KEEP_SNAPSHOTS),
            },
        )
        return {"ok": True, "created": True}

    def write(self, req):
        namespace, name, op = req["namespace"], req["table"], req["op"]
        keys = req.get("keys") or []
        try:
            table = self.table(namespace, name)
        except NoSuchTableError:
            n = len(req["rows"])
            why = f"table {namespace}.{name} does not exist"
            return {"ok": True, "written": 0, "refused": [{"index": i, "code": "Iceberg.TableNotFound", "message": why}
                                                          for i in range(n)]}
        schema = table.schema()
        columns = {f.name for f in schema.fields}
        refused, good = [], {}
        for i, row in enumerate(req["rows"]):
            try:
                unknown = sorted(set(row) - columns)
                if unknown:
                    raise Refused("Iceberg.SchemaMismatch", f"{namespace}.{name} has no column {', '.join(unknown)}")
                arrow([row], schema)
            except Refused as e:
                refused.append({"index": i, "code": e.code, "message": str(e)})
                continue
            # The last of a batch's rows with one key wins.
            good[tuple(row.get(k) for k in keys) if op == "upsert" else i] = row
        rows = list(good.values())
        inserted = updated = 0
        if rows:
            batch = arrow(rows, schema)
            if op == "append":
                table.append(batch)
                inserted = len(rows)
            else:
                inserted, updated = self.upsert(table, keys, rows, batch)
            if inserted or updated:
                upkeep(table)
        return {"ok": True, "written": len(req["rows"]) - len(refused), "inserted": inserted,
                "updated": updated, "refused": refused}

    def upsert(self, table, keys, rows, batch):
        wanted = {tuple(r.get(k) for k in keys) for r in rows}
        have = {}
        for r in table.scan(row_filter=matching(keys, wanted)).to_arrow().to_pylist():
            have.setdefault(tuple(r[k] for k in keys), []).append(r)
        new, changed = [], []
        for i, r in enumerate(batch.to_pylist()):
            before = have.get(tuple(r[k] for k in keys))
            if before is None:
                new.append(i)
            elif len(before) > 1 or before[0] != r:
                changed.append(i)
        if new or changed:
            with table.transaction() as tx:
                if changed:
                    gone = {tuple(rows[i].get(k) for k in keys) for i in changed}
                    tx.delete(matching(keys, gone))
                tx.append(batch.take(changed + new))
        return len(new), len(changed)

    def handle(self, req):
        if req["op"] == "create":
            return self.create(req)
        if req["op"] in ("upsert", "append"):
            for attempt in range(3):
                try:
                    return self.write(req)
                except CommitFailedException:
                    self.tables.pop((req["namespace"], req["table"]), None)
                    if attempt == 2:
                        raise
        raise ValueError(f"unknown op {req['op']!r}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--warehouse", required=True)
    args = parser.parse_args()
    writer = Writer(args.warehouse)
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            answer = writer.handle(json.loads(line))
        except Exception as e:  # noqa: BLE001 - every failure is the caller's to see
            print(f"iceberg_sink: {type(e).__name__}: {e}", file=sys.stderr, flush=True)
            answer = {"ok": False, "error": f"{type(e).__name__}: {e}"}
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
