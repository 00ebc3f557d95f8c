"""The whitelist CSV: bad rows named by line, good rows loaded, GBK accepted, re-import idempotent."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import func, select

from offercall import store
from offercall.db import session_scope
from offercall.schema import Customer, Offer
from offercall.settings import PROJECT_ROOT
from outbound.whitelist import WhitelistFormatError, import_whitelist_file, parse_whitelist

DATA = PROJECT_ROOT / "data"
TODAY = date(2026, 11, 22)
HEADER = "customer_id,name,phone,region,segment,product,amount,rate_min,rate_max,term_months,valid_until,consent\n"


def test_bad_rows_are_reported_by_line_and_reason_and_good_rows_still_parse():
    parsed = parse_whitelist((DATA / "whitelist_bad_rows.csv").read_bytes(), today=TODAY)
    assert [row.customer_id for row in parsed.rows] == ["C0101", "C0107"]
    reasons = {error.line: error.reason for error in parsed.errors}
    assert sorted(reasons) == [3, 4, 5, 6, 7, 8]
    assert "mainland mobile" in reasons[3]
    assert "not a number" in reasons[4]
    assert "rate" in reasons[5]
    assert "expired" in reasons[6]
    assert "duplicate" in reasons[7] and "line 2" in reasons[7]
    assert "fields" in reasons[8]


def test_gbk_from_chinese_excel_reads_the_same_as_utf8():
    text = HEADER + "C0201,欧阳娜娜,13812345678,金堂县,农户,邮享贷,50000,3.6,7.2,12,2027-12-31,是\n"
    from_gbk = parse_whitelist(text.encode("gbk"), today=TODAY)
    from_utf8_bom = parse_whitelist(text.encode("utf-8-sig"), today=TODAY)
    assert from_gbk.rows == from_utf8_bom.rows
    assert from_gbk.rows[0].name == "欧阳娜娜" and from_gbk.rows[0].consent is True


@pytest.mark.parametrize(
    ("data", "message"),
    [(b"", "empty"), (b"id,name\nC1,x\n", "missing"), (b"\xff\xfe\x00garbage\x81", "neither UTF-8 nor GBK")],
)
def test_unreadable_files_are_a_clear_error(data, message):
    with pytest.raises(WhitelistFormatError, match=message):
        parse_whitelist(data, today=TODAY)


def test_import_loads_good_rows_and_reimport_updates_without_duplicating(engine, tmp_path):
    report = import_whitelist_file(engine, DATA / "whitelist_bad_rows.csv", today=TODAY)
    assert report.loaded.inserted == 2 and len(report.errors) == 6
    assert "line 3" in report.summary()

    again = import_whitelist_file(engine, DATA / "whitelist_bad_rows.csv", today=TODAY)
    assert (again.loaded.inserted, again.loaded.unchanged) == (0, 2)

    changed = tmp_path / "changed.csv"
    changed.write_text(HEADER + "C0101,郑强,13800138101,金堂县,农户,邮享贷,80000,3.6,7.2,12,2027-12-31,1\n")
    assert import_whitelist_file(engine, changed, today=TODAY).loaded.updated == 1
    with session_scope(engine) as session:
        assert session.scalar(select(func.count()).select_from(Customer)) == 2
        versions = session.execute(
            select(Offer.version, Offer.amount_yuan, Offer.active)
            .where(Offer.customer_id == "C0101").order_by(Offer.version)).all()
        assert [tuple(v) for v in versions] == [(1, 50000, False), (2, 80000, True)]
        assert store.get_customer_offer(session, "C0101").amount_yuan == 80000


def test_customers_on_the_do_not_contact_list_are_not_loaded(engine):
    with session_scope(engine) as session:
        store.add_do_not_contact(session, customer_id=None, phone="13800138107",
                                 utterance="别再打了", conversation_id=None)
    report = import_whitelist_file(engine, DATA / "whitelist_bad_rows.csv", today=TODAY)
    assert report.loaded.inserted == 1
    assert any(e.customer_id == "C0107" and "do-not-contact" in e.reason for e in report.errors)


def test_seed_command_reports_bad_rows_and_loads_the_rest(tmp_path):
    import subprocess
    import sys

    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}", "OFFERCALL_VAR_DIR": str(tmp_path),
           "PATH": "/usr/bin:/bin"}
    run = subprocess.run([sys.executable, "-m", "offercall", "seed", str(DATA / "whitelist_bad_rows.csv")],
                         capture_output=True, text=True, env=env, cwd=PROJECT_ROOT, check=False)
    assert run.returncode == 0, run.stderr
    output = run.stdout + run.stderr
    assert "line 3" in output and "line 8" in output


def write_xlsx(path, rows):
    """An XLSX as Excel users make it: numbers typed as numbers, dates as date cells."""
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.append(["customer_id", "name", "phone", "region", "segment", "product", "amount",
                  "rate_min", "rate_max", "term_months", "valid_until", "consent"])
    for row in rows:
        sheet.append(row)
    book.save(path)
    return path


GOOD = ["X0001", "赵四", 13800138000, "金堂县", "农户", "邮享贷", 50000, 3.6, 7.2, 12, date(2027, 12, 31), 1]


def test_xlsx_rows_with_typed_cells_load_and_bad_rows_are_named_by_spreadsheet_row(engine, tmp_path):
    path = write_xlsx(tmp_path / "list.xlsx", [
        GOOD,
        ["X0002", "钱五", 12345, "双流区", "农户", "医保贷", 30000, 3.85, 6.5, 12, date(2027, 1, 1), 1],
        ["X0003", "孙六", 1.3900139000e10, "郫都区", "农户", "医保贷", 20000, 3.85, 6.5, 12, date(2020, 1, 1), 1],
        ["X0004", "李七", "139 0013 9004", "郫都区", "农户", "医保贷", 20000.0, 3.85, 6.5, 12, "2027-06-30", "是"],
    ])
    report = import_whitelist_file(engine, path, today=TODAY)
    assert report.loaded_customer_ids == ["X0001", "X0004"]
    reasons = {e.line: e.reason for e in report.errors}
    assert sorted(reasons) == [3, 4]
    assert "mainland mobile" in reasons[3] and "expired" in reasons[4]
    with session_scope(engine) as session:
        assert store.get_customer_offer(session, "X0001").phone == "13800138000"  # no ".0"
        assert store.get_customer_offer(session, "X0004").amount_yuan == 20000
    again = import_whitelist_file(engine, path, today=TODAY)
    assert (again.loaded.inserted, again.loaded.unchanged) == (0, 2)


def test_a_file_named_xlsx_that_is_not_one_is_refused_before_anything_is_written(engine, tmp_path):
    broken = tmp_path / "list.xlsx"
    broken.write_bytes(b"PK\x03\x04 this is not a workbook")
    with pytest.raises(WhitelistFormatError):
        import_whitelist_file(engine, broken, today=TODAY)
    with session_scope(engine) as session:
        assert session.execute(select(func.count()).select_from(Customer)).scalar() == 0


def test_a_database_failure_mid_load_leaves_nothing_half_written(engine, tmp_path, monkeypatch):
    from outbound import whitelist

    rows = "".join(f"Y{i:04d},客户{i},138{i:08d},金堂县,农户,邮享贷,50000,3.6,7.2,12,2027-12-31,1\n"
                   for i in range(1, 2501))
    path = tmp_path / "big.csv"
    path.write_text(HEADER + rows, encoding="utf-8")
    real, calls = whitelist._load_batch, []

    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("the database went away")
        return real(*args, **kwargs)

    monkeypatch.setattr(whitelist, "_load_batch", failing)
    with pytest.raises(RuntimeError):
        import_whitelist_file(engine, path, today=TODAY)
    with session_scope(engine) as session:
        assert session.execute(select(func.count()).select_from(Customer)).scalar() == 0
        assert session.execute(select(func.count()).select_from(Offer)).scalar() == 0


def test_a_thousand_rows_with_a_few_bad_ones_reports_exactly_those_lines(engine, tmp_path):
    lines = [f"Z{i:04d},客户{i},138{i:08d},金堂县,农户,邮享贷,50000,3.6,7.2,12,2027-12-31,1"
             for i in range(1, 1001)]
    bad = {101: "phone", 502: "amount", 877: "rate"}
    lines[99] = lines[99].replace("13800000100", "12345")
    lines[500] = lines[500].replace(",50000,", ",五万,")
    lines[875] = lines[875].replace(",3.6,7.2,", ",9.9,7.2,")
    path = tmp_path / "thousand.csv"
    path.write_text(HEADER + "\n".join(lines) + "\n", encoding="utf-8")
    report = import_whitelist_file(engine, path, today=TODAY)
    assert [e.line for e in report.errors] == sorted(bad)
    assert report.loaded.inserted == 997
