"""A results store as zenbench 0.1 wrote it (schema 1), for the conversion tests.

``fixtures/store_v1.json`` holds the tables of a store made by the 0.1 code itself, before the store
became generic: ``zenbench bench --proxies params,tenas --sample 6 --seed 0 --data noise --device cpu``
(NB201 CIFAR-10; one of the six cells is disconnected), with the one machine path it recorded (the ground
truth in the run's configuration) written ``$ZENBENCH_DATA``. :func:`write_v1_store` replays its schema and
rows into a new SQLite file.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "store_v1.json"


def v1_tables() -> dict[str, Any]:
    return json.loads(FIXTURE.read_text())


def write_v1_store(path: Path) -> dict[str, Any]:
    """Write the schema-1 store to ``path``; returns the fixture's tables (``meta``, ``runs``, ``scores``)."""
    tables = v1_tables()
    db = sqlite3.connect(path)
    try:
        for statement in tables["schema"]:
            db.execute(statement)
        db.executemany("INSERT INTO meta VALUES (?, ?)", list(tables["meta"].items()))
        for name in ("runs", "scores"):
            columns = list(tables[name][0])
            db.executemany(f"INSERT INTO {name} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
                           [[row[c] for c in columns] for row in tables[name]])
        db.commit()
    finally:
        db.close()
    return tables
