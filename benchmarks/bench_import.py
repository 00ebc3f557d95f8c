"""Benchmark: importing a large whitelist (CSV and XLSX) into SQLite and PostgreSQL.

Run on demand (not a test)::

    PYTHONPATH=. .venv/bin/python benchmarks/bench_import.py [--rows 100000] [--runs 3] [--postgres]
        [--formats csv xlsx]

Generates a whitelist of ``--rows`` customers as CSV and as XLSX (phones typed as numbers,
valid_until as date cells) in a temporary directory. Each run imports it into a fresh
database (a SQLite file; with ``--postgres`` also a private PostgreSQL server from
tests/postgres.py), then imports it again: the re-import must insert nothing and find every
row unchanged. Prints the medians over the runs of parse time, load time and rows/s.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

from outbound.whitelist import COLUMNS, OPTIONAL_COLUMNS, load_whitelist, read_whitelist
from persistence.engine import make_engine
from persistence.migrator import migrate

TODAY = date.today()
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗欧阳"
REGIONS = ["金堂县", "双流区", "郫都区", "新都区", "大邑县", "蒲江县"]
PRODUCTS = ["邮享贷", "医保贷", "极速贷"]


def whitelist_rows(count: int) -> Iterator[list]:
    """Typed rows (numbers, dates) in the column order COLUMNS + OPTIONAL_COLUMNS."""
    for i in range(count):
        yield [
            f"B{i:08d}", SURNAMES[i % len(SURNAMES)] + "某" + "一二三四五六七八九"[i % 9],
            13_000_000_000 + i * 7, REGIONS[i % len(REGIONS)], ["农户", "个体", "工薪"][i % 3],
            PRODUCTS[i % len(PRODUCTS)], 10_000 + (i % 50) * 1_000, round(3.6 + (i % 5) * 0.25, 2),
            round(7.2 + (i % 5) * 0.25, 2), [6, 12, 24, 36][i % 4], date(2099, 12, 31), 1, "MF"[i % 2],
        ]


def write_csv(path: Path, count: int) -> None:
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow([*COLUMNS, *OPTIONAL_COLUMNS])
        for row in whitelist_rows(count):
            row[10] = row[10].isoformat()
            writer.writerow(row)


def write_xlsx(path: Path, count: int) -> None:
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    sheet = book.create_sheet("名单")
    sheet.append([*COLUMNS, *OPTIONAL_COLUMNS])
    for row in whitelist_rows(count):
        sheet.append(row)
    book.save(path)


@contextmanager
def sqlite_databases(directory: Path) -> Iterator[Callable[[], str]]:
    counter = iter(range(1_000_000))
    yield lambda: f"sqlite:///{directory / f'bench{next(counter)}.db'}"


@contextmanager
def postgres_databases() -> Iterator[Callable[[], str]]:
    from tests.postgres import start_postgres

    server = start_postgres()
    try:
        yield server.new_database
    finally:
        server.stop()


def one_run(url: str, path: Path, rows: int) -> dict[str, float]:
    """Import twice into a fresh database; the seconds of each step."""
    engine = make_engine(url)
    migrate(engine)
    timings: dict[str, float] = {}
    try:
        for phase, expect in (("first", (rows, 0, 0)), ("again", (0, 0, rows))):
            started = time.perf_counter()
            parsed = read_whitelist(path, today=TODAY)
            parsed_at = time.perf_counter()
            report = load_whitelist(engine, parsed)
            loaded_at = time.perf_counter()
            got = (report.loaded.inserted, report.loaded.updated, report.loaded.unchanged)
            if got != expect or report.errors:
                raise SystemExit(f"{phase} import of {path.name}: expected {expect} "
                                 f"(new, updated, unchanged), got {got}; errors {report.errors[:3]}")
            timings[f"{phase}.parse"] = parsed_at - started
            timings[f"{phase}.load"] = loaded_at - parsed_at
    finally:
        engine.dispose()
    return timings


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    results: list[tuple[str, str, dict[str, float]]] = []
    with tempfile.TemporaryDirectory(prefix="offercall-bench-import-") as tmp:
        directory = Path(tmp)
        files = {kind: directory / f"whitelist.{kind}" for kind in args.formats}
        for kind, path in files.items():
            started = time.perf_counter()
            (write_csv if kind == "csv" else write_xlsx)(path, args.rows)
            print(f"wrote {args.rows} rows as {kind} ({path.stat().st_size / 1e6:.1f} MB) in "
                  f"{time.perf_counter() - started:.1f} s", file=sys.stderr)
        backends = [("SQLite", lambda: sqlite_databases(directory))]
        if args.postgres:
            backends.append(("PostgreSQL", postgres_databases))
        for backend, databases in backends:
            with databases() as new_database:
                for kind, path in files.items():
                    runs = []
                    for run in range(args.runs):
                        runs.append(one_run(new_database(), path, args.rows))
                        print(f"{backend} {kind} run {run + 1}: "
                              + ", ".join(f"{k} {v:.2f} s" for k, v in runs[-1].items()), file=sys.stderr)
                    medians = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
                    results.append((backend, kind, medians))
    print_table(args, results)
    return 0


def print_table(args: argparse.Namespace, results: list[tuple[str, str, dict[str, float]]]) -> None:
    title = f"Whitelist import, {args.rows} rows, medians of {args.runs} runs"
    print(f"\n{title}\n" + "-" * len(title))
    print(f"  {'database':<10} {'file':<4} {'import':<9} {'parse s':>8} {'parse rows/s':>13} "
          f"{'load s':>8} {'load rows/s':>12} {'total s':>8}")
    for backend, kind, medians in results:
        for phase, label in (("first", "first"), ("again", "re-import")):
            parse, load = medians[f"{phase}.parse"], medians[f"{phase}.load"]
            print(f"  {backend:<10} {kind:<4} {label:<9} {parse:>8.2f} {args.rows / parse:>13,.0f} "
                  f"{load:>8.2f} {args.rows / load:>12,.0f} {parse + load:>8.2f}")
    print(f"  (reproduce: PYTHONPATH=. {sys.executable} {' '.join(sys.argv)})")


def parser() -> argparse.ArgumentParser:
    main_parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    main_parser.add_argument("--rows", type=int, default=100_000)
    main_parser.add_argument("--runs", type=int, default=3)
    main_parser.add_argument("--postgres", action="store_true",
                             help="also import into a private PostgreSQL server")
    main_parser.add_argument("--formats", nargs="+", choices=["csv", "xlsx"], default=["csv", "xlsx"])
    return main_parser


if __name__ == "__main__":
    sys.exit(main())
