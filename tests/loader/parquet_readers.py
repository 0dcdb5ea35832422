"""Reads every Parquet file of a batch with DuckDB and with pyarrow, and
checks what issue #13 promises: the column types of the one mapping from
the JSON Schemas, row counts equal to the manifest, and, where the batch
also has the text file, the same values.

    python parquet_readers.py data/raw/2026-03-01 schemas

Prints one line per file and exits 1 on the first disagreement.
"""

import csv
import datetime
import json
import pathlib
import sys

import duckdb
import pyarrow.parquet as pq
import pyarrow as pa


def expected_types(schema):
    """(DuckDB type, pyarrow type, nullable) per column, from the JSON Schema."""
    out = {}
    for name, spec in schema["properties"].items():
        types = spec.get("type")
        types = [types] if isinstance(types, str) else types
        nullable = "null" in types
        if "integer" in types:
            t = ("BIGINT", pa.int64())
        elif "number" in types:
            t = ("DOUBLE", pa.float64())
        elif "boolean" in types:
            t = ("BOOLEAN", pa.bool_())
        elif spec.get("format") == "date-time":
            t = ("TIMESTAMP WITH TIME ZONE", pa.timestamp("ms", tz="UTC"))
        elif spec.get("format") == "date":
            t = ("DATE", pa.date32())
        elif "enum" in spec:
            t = ("VARCHAR", pa.dictionary(pa.int32(), pa.string()))
        else:
            t = ("VARCHAR", pa.string())
        out[name] = (t[0], t[1], nullable)
    return out


def fail(message):
    print(f"FAIL {message}")
    sys.exit(1)


def text_rows(path):
    if path.suffix == ".csv":
        with open(path, newline="") as f:
            return [{k: (v if v != "" else None) for k, v in row.items()} for row in csv.DictReader(f)]
    return [json.loads(line) for line in path.read_text().splitlines()]


def same(parquet_value, text_value, arrow_type):
    if parquet_value is None or text_value is None:
        return parquet_value is None and text_value is None
    if pa.types.is_timestamp(arrow_type):
        return parquet_value == datetime.datetime.fromisoformat(text_value.replace("Z", "+00:00"))
    if pa.types.is_date32(arrow_type):
        return parquet_value == datetime.date.fromisoformat(text_value)
    if pa.types.is_integer(arrow_type):
        return parquet_value == int(text_value)
    if pa.types.is_floating(arrow_type):
        return parquet_value == float(text_value)
    if pa.types.is_boolean(arrow_type):
        return parquet_value == (text_value in (True, "true"))
    return parquet_value == text_value


def main(batch, schemas):
    batch = pathlib.Path(batch)
    manifest = json.loads((batch / "_manifest.json").read_text())
    rows_of = {f["name"]: f["rows"] for f in manifest["files"]}
    files = sorted(batch.glob("*.parquet"))
    if not files:
        fail(f"{batch} has no Parquet file")
    for path in files:
        name = path.stem
        schema = json.loads((pathlib.Path(schemas) / f"{name}.schema.json").read_text())
        expected = expected_types(schema)
        described = duckdb.sql(f"DESCRIBE SELECT * FROM read_parquet('{path}')").fetchall()
        got = [(r[0], r[1]) for r in described]
        want = [(c, t[0]) for c, t in expected.items()]
        if got != want:
            fail(f"{path.name}: DuckDB reads {got}, expected {want}")
        arrow_schema = pq.read_schema(path)
        for field in arrow_schema:
            duck, arrow_type, nullable = expected[field.name]
            if field.type != arrow_type or field.nullable != nullable:
                fail(f"{path.name}: pyarrow reads {field}, expected {arrow_type} nullable={nullable}")
        table = pq.read_table(path)
        count = duckdb.sql(f"SELECT count(*) FROM read_parquet('{path}')").fetchall()[0][0]
        if not (table.num_rows == count == rows_of[path.name]):
            fail(f"{path.name}: pyarrow {table.num_rows} rows, DuckDB {count}, manifest {rows_of[path.name]}")
        text = next((batch / n for n in (f"{name}.csv", f"{name}.jsonl") if (batch / n).exists()), None)
        compared = ""
        if text is not None:
            text_values = text_rows(text)
            parquet_values = table.to_pylist()
            if len(text_values) != len(parquet_values):
                fail(f"{path.name}: {len(parquet_values)} rows, {text.name} {len(text_values)}")
            for i, (p, t) in enumerate(zip(parquet_values, text_values)):
                for column, (_, arrow_type, _) in expected.items():
                    if not same(p[column], t[column], arrow_type):
                        fail(f"{path.name} row {i + 1} {column}: {p[column]!r}, {text.name} has {t[column]!r}")
            compared = f", values equal to {text.name}"
        print(f"ok {path.name}: {table.num_rows} rows, types as mapped{compared}")


if __name__ == "__main__":
    main(*sys.argv[1:3])
