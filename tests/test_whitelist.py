"""The whitelist CSV and XLSX: bad rows named by line, good rows loaded all or nothing, GBK
accepted, re-import idempotent."""

from __future__ import annotations

import csv
import zipfile
from datetime import date, datetime
from decimal import Decimal

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from core.settings import PROJECT_ROOT
from outbound import whitelist
from outbound.whitelist import (
    ImportReport,
    LoadResult,
    RowError,
    WhitelistFormatError,
    import_whitelist_file,
    parse_whitelist,
    read_whitelist,
)
from persistence import store
from persistence.engine import session_scope
from persistence.schema import Customer, Offer

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
    subprocess.run([sys.executable, "-m", "offercall", "migrate"], capture_output=True, env=env,
                   cwd=PROJECT_ROOT, check=True)
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


# --- XLSX, encodings, all-or-nothing ------------------------------------------------------

COLUMNS = HEADER.strip().split(",")


def good_row(i: int, **changes) -> dict:
    row = dict(customer_id=f"X{i:04d}", name="王芳", phone=f"139{i:08d}", region="金堂县",
               segment="农户", product="邮享贷", amount=50000, rate_min=3.6, rate_max=7.2,
               term_months=12, valid_until=date(2027, 12, 31), consent=1)
    return {**row, **changes}


def write_workbook(path, rows, *, header=COLUMNS, percent_rates=False):
    """A workbook as Excel would save it: typed cells; ``None`` rows are left blank."""
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.append(header)
    for row in rows:
        sheet.append([] if row is None else [row[c] for c in header])
        if percent_rates and row is not None:
            for column in ("rate_min", "rate_max"):
                sheet.cell(sheet.max_row, header.index(column) + 1).number_format = "0.00%"
    book.save(path)
    return path


def test_xlsx_typed_cells_read_like_csv_text(tmp_path):
    path = write_workbook(tmp_path / "w.xlsx", [
        good_row(1),                                  # phone as an int cell
        good_row(2, phone=13900000002.0, amount=60000.0, term_months=24.0),  # floats from Excel
        good_row(3, phone=1.38e10, valid_until=datetime(2028, 1, 31), consent=True),
        good_row(4, customer_id=1004, rate_min="3.6%", rate_max="7.2", valid_until="2027/12/31"),
    ])
    rows = parse_whitelist(path.read_bytes(), today=TODAY).rows
    assert [r.phone for r in rows] == ["13900000001", "13900000002", "13800000000", "13900000004"]
    assert [r.customer_id for r in rows] == ["X0001", "X0002", "X0003", "1004"]
    assert (rows[1].amount_yuan, rows[1].term_months) == (60000, 24)
    assert rows[2].valid_until == date(2028, 1, 31) and rows[2].consent is True
    assert (rows[3].rate_min, rows[3].rate_max, rows[3].valid_until) == (
        Decimal("3.6"), Decimal("7.2"), date(2027, 12, 31))


def test_xlsx_percentage_cells_are_read_as_the_percentage_shown(tmp_path):
    path = write_workbook(tmp_path / "w.xlsx", [good_row(1, rate_min=0.036, rate_max=0.0725)],
                      percent_rates=True)
    row = parse_whitelist(path.read_bytes(), today=TODAY).rows[0]
    assert (row.rate_min, row.rate_max) == (Decimal("3.6"), Decimal("7.25"))


def test_xlsx_bad_rows_are_named_by_spreadsheet_row(tmp_path):
    path = write_workbook(tmp_path / "w.xlsx", [
        good_row(1),                                          # row 2
        good_row(2, phone=1380013),                           # row 3
        None,                                                 # row 4: blank, skipped
        good_row(3, amount=50000.5),                          # row 5
        good_row(4, valid_until=date(2020, 1, 1)),            # row 6
        good_row(5, rate_min=None),                           # row 7: empty cell
        good_row(1),                                          # row 8: duplicate of row 2
        good_row(6, consent="maybe"),                         # row 9
        good_row(7, phone=1.38001e10),                        # row 10: fine, 13800100000
    ])
    parsed = parse_whitelist(path.read_bytes(), today=TODAY)
    assert [r.line for r in parsed.rows] == [2, 10]
    reasons = {e.line: e.reason for e in parsed.errors}
    assert sorted(reasons) == [3, 5, 6, 7, 8, 9]
    assert "'1380013' is not a mainland mobile number" in reasons[3]
    assert "whole number of yuan" in reasons[5]
    assert "expired on 2020-01-01" in reasons[6]
    assert "not numbers" in reasons[7]
    assert reasons[8] == "duplicate customer_id (first on line 2)"
    assert "consent 'maybe'" in reasons[9]


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("w.xlsx", b"PK\x03\x04not really a zip", "not a readable XLSX workbook"),
        ("w.xlsx", HEADER.encode(), "named like an XLSX workbook but is not one"),
        ("w.xls", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 512, "old Excel .xls"),
    ],
)
def test_files_that_are_not_workbooks_are_a_clear_error(tmp_path, name, data, message):
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(WhitelistFormatError, match=message):
        read_whitelist(path, today=TODAY)


def test_a_zip_that_is_not_a_workbook_is_a_clear_error(tmp_path):
    path = tmp_path / "w.xlsx"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("readme.txt", "hello")
    with pytest.raises(WhitelistFormatError, match="not a readable XLSX workbook"):
        read_whitelist(path, today=TODAY)


def test_format_is_told_by_content_not_by_name(tmp_path):
    workbook = write_workbook(tmp_path / "w.xlsx", [good_row(1)])
    misnamed = tmp_path / "from-the-bank.csv"
    misnamed.write_bytes(workbook.read_bytes())
    assert [r.customer_id for r in read_whitelist(misnamed, today=TODAY).rows] == ["X0001"]


def test_gbk_bom_blank_lines_and_stray_whitespace_are_tolerated():
    text = ("customer_id , name,phone ,region,segment,product,amount,rate_min,rate_max,"
            "term_months,valid_until,consent,gender,,\r\n"
            "\r\n"
            " C0201 ,欧阳娜娜 ,138 1234 5678,金堂县,农户,邮享贷, 50000 ,3.6 ,7.2,12 ,2027-12-31 ,是 ,女,,\r\n"
            ",,,,,,,,,,,,,,\r\n"
            "   \r\n"
            "C0202,张三,13812345679,金堂县,农户,邮享贷,\"50,000\",3.6,7.2,12,2027-12-31,否\r\n")
    for data in (text.encode("gbk"), text.encode("utf-8-sig"), text.encode("utf-8")):
        parsed = parse_whitelist(data, today=TODAY)
        assert [e.line for e in parsed.errors] == [6]  # too few fields, not the blank lines
        row = parsed.rows[0]
        assert (row.line, row.customer_id, row.name, row.phone, row.amount_yuan, row.gender) == (
            3, "C0201", "欧阳娜娜", "13812345678", 50000, "F")


def test_gbk_header_row_with_a_chinese_column_name_is_named_in_the_error():
    data = (HEADER.strip() + ",备注\n").encode("gbk")
    with pytest.raises(WhitelistFormatError, match="unknown columns: 备注"):
        parse_whitelist(data, today=TODAY)


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        (dict(rate_min="3.625"), "at most two decimals"),
        (dict(name="张" * 101), "name is longer than 100 characters"),
        (dict(customer_id="C" * 65), "customer_id is longer than 64 characters"),
        (dict(phone=""), "phone is empty"),
        (dict(phone="1.38001E+10"), "scientific notation"),
        (dict(valid_until=""), "valid_until is empty"),
    ],
)
def test_rows_the_database_would_refuse_are_rejected_when_parsed(changes, reason):
    values = {**good_row(1), **changes}
    line = ",".join(str(values[c]) for c in COLUMNS)
    parsed = parse_whitelist((HEADER + line + "\n").encode(), today=TODAY)
    assert parsed.rows == [] and reason in parsed.errors[0].reason


def test_a_header_without_rows_is_an_error():
    with pytest.raises(WhitelistFormatError, match="no customer rows"):
        parse_whitelist(HEADER.encode(), today=TODAY)


def count(engine, table) -> int:
    with session_scope(engine) as session:
        return session.scalar(select(func.count()).select_from(table))


def test_xlsx_import_loads_in_file_order_and_reimport_changes_nothing(engine, tmp_path):
    with session_scope(engine) as session:
        store.add_do_not_contact(session, customer_id="X0003", phone=None,
                                 utterance="别再打了", conversation_id=None)
    path = write_workbook(tmp_path / "w.xlsx", [good_row(5), good_row(2, phone=123), good_row(3),
                                            good_row(1), good_row(4)])
    report = import_whitelist_file(engine, path, today=TODAY)
    assert report.loaded_customer_ids == ["X0005", "X0001", "X0004"]
    assert (report.loaded.inserted, [e.line for e in report.errors]) == (3, [3, 4])

    again = import_whitelist_file(engine, path, today=TODAY)
    assert (again.loaded.inserted, again.loaded.updated, again.loaded.unchanged) == (0, 0, 3)
    assert again.loaded_customer_ids == report.loaded_customer_ids
    assert (count(engine, Customer), count(engine, Offer)) == (3, 3)


def test_errors_csv_lists_line_customer_and_reason(tmp_path):
    report = ImportReport(loaded=LoadResult(), errors=[
        RowError(3, "C0102", "phone '1380013' is not a mainland mobile number"),
        RowError(8, None, "expected 12 fields as in the header, found 10"),
    ])
    report.write_errors_csv(tmp_path / "errors.csv")
    with (tmp_path / "errors.csv").open(encoding="utf-8-sig", newline="") as written:
        assert list(csv.reader(written)) == [
            ["line", "customer_id", "reason"],
            ["3", "C0102", "phone '1380013' is not a mainland mobile number"],
            ["8", "", "expected 12 fields as in the header, found 10"],
        ]


def test_a_database_error_mid_load_leaves_the_database_unchanged(engine, tmp_path, monkeypatch):
    first = tmp_path / "first.csv"
    first.write_text(HEADER + "\n".join(
        ",".join(str(good_row(i)[c]) for c in COLUMNS) for i in range(1, 4)) + "\n")
    import_whitelist_file(engine, first, today=TODAY)
    before = snapshot(engine)

    changed = tmp_path / "changed.csv"
    changed.write_text(HEADER + "\n".join(
        ",".join(str(good_row(i, amount=90000, name="李四")[c]) for c in COLUMNS)
        for i in range(1, 8)) + "\n")
    real_load_batch = whitelist._load_batch
    calls = []

    def failing_load_batch(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise OperationalError("INSERT", {}, Exception("disk full"))
        return real_load_batch(*args, **kwargs)

    monkeypatch.setattr(whitelist, "BATCH", 2)
    monkeypatch.setattr(whitelist, "_load_batch", failing_load_batch)
    with pytest.raises(OperationalError):
        import_whitelist_file(engine, changed, today=TODAY)
    assert len(calls) == 3  # two batches had been written before the failure
    assert snapshot(engine) == before


@pytest.mark.parametrize(
    "data", [b"", b"id,name\nC1,x\n", b"\xff\xfe\x00garbage\x81", b"PK\x03\x04broken", HEADER.encode()],
)
def test_file_level_errors_write_nothing(engine, tmp_path, data):
    path = tmp_path / "w.csv"
    path.write_bytes(data)
    with pytest.raises(WhitelistFormatError):
        import_whitelist_file(engine, path, today=TODAY)
    assert (count(engine, Customer), count(engine, Offer)) == (0, 0)


def snapshot(engine) -> tuple:
    with session_scope(engine) as session:
        return (
            [tuple(r) for r in session.execute(select(
                Customer.customer_id, Customer.name, Customer.phone, Customer.updated_at)
                .order_by(Customer.customer_id))],
            [tuple(r) for r in session.execute(select(
                Offer.customer_id, Offer.version, Offer.amount_yuan, Offer.active)
                .order_by(Offer.customer_id, Offer.version))],
        )


def test_addresses_and_a_pharmacys_contact_load_and_a_changed_address_updates_the_customer(
        engine, tmp_path):
    header = HEADER.strip() + ",address,org_name,org_address\n"
    path = tmp_path / "yibaodai.csv"
    path.write_text(header
                    + "Y0001,黄药师,13800138201,金堂县,医保客户,医保贷,200000,3.85,6.5,12,2027-12-31,1,"
                      "四川省成都市金堂县赵镇金广路8号,金堂县仁和大药房,四川省成都市金堂县赵镇十里大道二段88号\n"
                    + "Y0002,陈农户,13800138202,郫都区,农户,邮享贷,50000,3.6,7.2,12,2027-12-31,1,,,\n",
                    encoding="utf-8")
    report = import_whitelist_file(engine, path, today=TODAY)
    assert (report.loaded.inserted, report.errors) == (2, [])
    with session_scope(engine) as session:
        pharmacy, farmer = (session.get(Customer, c) for c in ("Y0001", "Y0002"))
        assert (pharmacy.org_name, pharmacy.org_address) == (
            "金堂县仁和大药房", "四川省成都市金堂县赵镇十里大道二段88号")
        assert pharmacy.address == "四川省成都市金堂县赵镇金广路8号"
        assert (farmer.address, farmer.org_name, farmer.org_address) == (None, None, None)

    path.write_text(path.read_text(encoding="utf-8").replace("金广路8号", "金广路10号"), encoding="utf-8")
    again = import_whitelist_file(engine, path, today=TODAY)
    assert (again.loaded.updated, again.loaded.unchanged) == (1, 1)
    with session_scope(engine) as session:
        assert session.get(Customer, "Y0001").address == "四川省成都市金堂县赵镇金广路10号"


def test_an_address_longer_than_the_column_is_a_bad_row_named_by_line():
    header = HEADER.strip() + ",address\n"
    data = (header + "Y0003,王五,13800138203,金堂县,农户,邮享贷,50000,3.6,7.2,12,2027-12-31,1,"
            + "金堂县" * 70 + "\n").encode()
    parsed = whitelist.parse_whitelist(data, today=TODAY)
    assert [(e.line, e.reason) for e in parsed.errors] == [(2, "address is longer than 200 characters")]
