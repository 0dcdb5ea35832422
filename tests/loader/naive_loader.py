"""A naive DuckDB loader: the README's example of a pipeline under test.

It loads every CSV of every batch of a mode's folder with the types of the
JSON Schemas, keeps the lines DuckDB rejects, and flags a few obvious
problems in what it loaded: a required ID or time missing, a vital sign
outside the schema's bounds, a lab value below zero, a patient the batch does
not have, an ID seen twice. Each rejected or flagged row goes to a JSON
Lines file for `datagen score`:

    python naive_loader.py data/raw schemas found.jsonl
    datagen score --truth data/raw --found found.jsonl

It is deliberately simple: what it misses is what the score shows.
"""

import json
import pathlib
import sys

import duckdb

SQL_TYPES = {"integer": "BIGINT", "number": "DOUBLE"}


def columns(schema_path):
    schema = json.loads(schema_path.read_text())
    out = {}
    for name, spec in schema["properties"].items():
        types = spec.get("type")
        types = [types] if isinstance(types, str) else types
        if spec.get("format") == "date-time":
            sql = "TIMESTAMPTZ"
        elif spec.get("format") == "date":
            sql = "DATE"
        else:
            sql = next((SQL_TYPES[t] for t in types if t in SQL_TYPES), "VARCHAR")
        out[name] = sql
    return out, schema


def main(mode_dir, schemas, found_path):
    con = duckdb.connect()
    found = open(found_path, "w")

    def flag(batch, file, **where):
        found.write(json.dumps({"batch": batch, "file": file, **where}) + "\n")

    for batch_dir in sorted(p for p in pathlib.Path(mode_dir).iterdir() if p.is_dir()):
        batch = batch_dir.name
        for name in ["patients", "encounters", "vitals", "labs"]:
            types, schema = columns(pathlib.Path(schemas) / f"{name}.schema.json")
            path = batch_dir / f"{name}.csv"
            literal = str(path).replace("'", "''")
            try:
                con.execute(
                    f"CREATE OR REPLACE TABLE {name} AS SELECT * FROM "
                    f"read_csv('{literal}', header = true, columns = {types!r}, store_rejects = true)"
                )
            except duckdb.Error:
                # The file does not load at all (its columns changed): the
                # whole file is flagged, at its header.
                flag(batch, f"{name}.csv", line=1)
                defs = ", ".join(f'"{c}" {t}' for c, t in types.items())
                con.execute(f"CREATE OR REPLACE TABLE {name} ({defs})")
            rejected = con.execute(
                "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'reject_errors'"
            ).fetchone()[0]
            if rejected:
                for (line,) in con.execute("SELECT DISTINCT line FROM reject_errors").fetchall():
                    flag(batch, f"{name}.csv", line=line)
            key = next(iter(types))
            # A required value missing.
            required = [c for c in schema["required"] if "null" not in (schema["properties"][c].get("type") or [])]
            missing = " OR ".join(f'"{c}" IS NULL' for c in required)
            for (k,) in con.execute(f'SELECT "{key}" FROM {name} WHERE {missing}').fetchall():
                flag(batch, f"{name}.csv", key=k)
            # An ID seen twice.
            for (k,) in con.execute(f'SELECT "{key}" FROM {name} GROUP BY 1 HAVING count(*) > 1').fetchall():
                flag(batch, f"{name}.csv", key=k)
            # Outside the schema's bounds.
            bounds = [
                f'"{c}" NOT BETWEEN {s["minimum"]} AND {s["maximum"]}'
                for c, s in schema["properties"].items()
                if "minimum" in s and "maximum" in s
            ]
            if bounds:
                for (k,) in con.execute(f'SELECT "{key}" FROM {name} WHERE {" OR ".join(bounds)}').fetchall():
                    flag(batch, f"{name}.csv", key=k)
            # A patient the batch does not have.
            if name != "patients":
                for (k,) in con.execute(
                    f'SELECT "{key}" FROM {name} WHERE patient_id NOT IN (SELECT patient_id FROM patients)'
                ).fetchall():
                    flag(batch, f"{name}.csv", key=k)
            con.execute("DROP TABLE IF EXISTS reject_errors")
            con.execute("DROP TABLE IF EXISTS reject_scans")
    found.close()


if __name__ == "__main__":
    main(*sys.argv[1:4])
