"""`kiosk import`: CSV (with/without BOM) and XLSX, per-row errors, dry run, broken files."""
from __future__ import annotations

import json

import sqlalchemy as sa
from click.testing import CliRunner
from openpyxl import Workbook

from kiosk.cli import cli
from kiosk.store.schema import dossier_history, dossiers
from sms_gateway.schema import notices
from tests.conftest import write_config_file

HEADER = ["Mã hồ sơ", "Mã tra cứu", "Thủ tục", "Lĩnh vực", "Người nộp", "Số điện thoại", "Trạng thái",
          "Ngày hẹn trả", "Ngày tiếp nhận", "Ngày cập nhật"]
ROWS = [
    ["H42-0001", "AB12CD", "Đăng ký khai sinh", "Hộ tịch", "Nguyễn Văn Hùng", "0912345678", "processing",
     "28/11/2025", "20/11/2025 08:15", "2025-11-25 10:00:00"],
    ["H42-0002", "", "Chứng thực bản sao", "Chứng thực", "Trần Thị Lan", "01689123456", "releasing",
     "2025-11-26", "", "2025-11-25 10:05:00"],
    ["H42 0003", "", "Đăng ký kết hôn", "Hộ tịch", "Lê Văn A", "", "processing", "", "", ""],  # bad code
    ["H42-0004", "", "Đăng ký kết hôn", "Hộ tịch", "Lê Thị B", "", "lost-in-space", "", "", ""],  # bad status
    ["", "", "", "", "", "", "", "", "", ""],  # blank row: skipped silently
    ["H42-0005", "", "Cấp bản sao trích lục", "Hộ tịch", "Phạm C", "", "done", "31/02/2025", "", ""],  # bad date
    ["H42-0006", "", "Trợ cấp xã hội", "Bảo trợ xã hội", "Hoàng D", "0987654321", "waiting", "", "", ""],
]


def write_csv(path, rows=ROWS, bom=True, sep=","):
    import csv
    with open(path, "w", newline="", encoding="utf-8-sig" if bom else "utf-8") as fh:
        w = csv.writer(fh, delimiter=sep)
        w.writerow(HEADER)
        w.writerows(rows)
    return path


def run(tmp_path, *args):
    cfg = write_config_file(tmp_path / "cfg.toml", {"paths": {"data_dir": str(tmp_path / "data")}})
    result = CliRunner().invoke(cli, ["--config", str(cfg), *args], catch_exceptions=False)
    return result, cfg


def db_rows(tmp_path, table=dossiers):
    eng = sa.create_engine(f"sqlite:///{tmp_path / 'data' / 'motcua.db'}")
    with eng.connect() as conn:
        rows = conn.execute(sa.select(table)).mappings().all()
    eng.dispose()
    return rows


def test_csv_with_bom_imports_good_rows_and_reports_bad_ones(tmp_path):
    path = write_csv(tmp_path / "export.csv")
    result, _ = run(tmp_path, "import", "--json", str(path))
    assert result.exit_code == 2  # some rows had errors
    out = json.loads(result.stdout)
    assert (out["created"], out["errors"]) == (3, 3)
    assert {(e["row"], e["field"]) for e in out["error_rows"]} == {(4, "code"), (5, "status"), (7, "appointment_date")}
    got = {r["code"]: r for r in db_rows(tmp_path)}
    assert set(got) == {"H42-0001", "H42-0002", "H42-0006"}
    assert got["H42-0001"]["applicant_name"] == "Nguyễn Văn Hùng"
    assert str(got["H42-0001"]["appointment_date"]) == "2025-11-28"
    assert got["H42-0006"]["status"] == "more_documents"
    assert len(db_rows(tmp_path, notices)) == 2  # releasing + waiting(more documents), both with phones


def test_import_twice_is_idempotent(tmp_path):
    path = write_csv(tmp_path / "export.csv")
    run(tmp_path, "import", str(path))
    result, _ = run(tmp_path, "import", "--json", str(path))
    out = json.loads(result.stdout)
    assert (out["created"], out["unchanged"]) == (0, 3)
    assert len(db_rows(tmp_path, dossier_history)) == 3
    assert len(db_rows(tmp_path, notices)) == 2


def test_csv_without_bom_and_semicolons(tmp_path):
    path = write_csv(tmp_path / "export.csv", rows=ROWS[:2], bom=False, sep=";")
    result, _ = run(tmp_path, "import", str(path))
    assert result.exit_code == 0, result.output
    assert "2 created" in result.stdout
    assert len(db_rows(tmp_path)) == 2


def test_dry_run_writes_nothing(tmp_path):
    path = write_csv(tmp_path / "export.csv")
    result, _ = run(tmp_path, "import", "--dry-run", str(path))
    assert "dry run: nothing written" in result.stdout and "3 created" in result.stdout
    assert db_rows(tmp_path) == []


def test_error_report_file(tmp_path):
    path = write_csv(tmp_path / "export.csv")
    report = tmp_path / "errors.csv"
    run(tmp_path, "import", "--errors", str(report), str(path))
    lines = report.read_text(encoding="utf-8-sig").splitlines()
    assert lines[0] == "row,code,field,error" and len(lines) == 4
    assert lines[2].startswith("5,H42-0004,status,unknown status")


def test_xlsx_export(tmp_path):
    wb = Workbook()
    ws = wb.active
    ws.append(HEADER)
    for row in ROWS:
        ws.append(row)
    wb.save(tmp_path / "export.xlsx")
    result, _ = run(tmp_path, "import", "--json", str(tmp_path / "export.xlsx"))
    out = json.loads(result.stdout)
    assert (out["created"], out["errors"]) == (3, 3)


def test_newer_import_moves_status_forward_older_does_not(tmp_path):
    path = write_csv(tmp_path / "a.csv", rows=[ROWS[0]])
    run(tmp_path, "import", str(path))
    newer = list(ROWS[0])
    newer[6] = "releasing"
    newer[9] = "2025-11-26 09:00:00"
    older = list(ROWS[0])
    older[6] = "receiving"
    older[9] = "2025-11-20 09:00:00"
    run(tmp_path, "import", str(write_csv(tmp_path / "b.csv", rows=[newer])))
    result, _ = run(tmp_path, "import", "--json", str(write_csv(tmp_path / "c.csv", rows=[older])))
    assert json.loads(result.stdout)["stale"] == 1
    assert db_rows(tmp_path)[0]["status"] == "result_ready"


def test_broken_files_get_one_clear_error(tmp_path):
    (tmp_path / "latin1.csv").write_bytes("Mã hồ sơ,Trạng thái\nA-1,processing\n".encode("utf-16"))
    result, _ = run(tmp_path, "import", str(tmp_path / "latin1.csv"))
    assert result.exit_code == 1 and "not UTF-8" in result.output
    (tmp_path / "fake.xlsx").write_bytes(b"this is not a zip")
    result, _ = run(tmp_path, "import", str(tmp_path / "fake.xlsx"))
    assert result.exit_code == 1 and "not a readable XLSX" in result.output
    (tmp_path / "nocols.csv").write_text("a,b\n1,2\n", encoding="utf-8")
    result, _ = run(tmp_path, "import", str(tmp_path / "nocols.csv"))
    assert result.exit_code == 1 and "no column 'Mã hồ sơ', 'Trạng thái'" in result.output
    (tmp_path / "data.pdf").write_bytes(b"%PDF")
    result, _ = run(tmp_path, "import", str(tmp_path / "data.pdf"))
    assert "unsupported file type .pdf" in result.output
    result, _ = run(tmp_path, "import", str(tmp_path / "missing.csv"))
    assert "does not exist" in result.output


def test_row_refused_by_the_database_is_reported_and_the_rest_go_in(tmp_path):
    path = write_csv(tmp_path / "export.csv", rows=[ROWS[0], ROWS[1], ROWS[6]])
    run(tmp_path, "import", "--dry-run", str(path))  # creates the database
    eng = sa.create_engine(f"sqlite:///{tmp_path / 'data' / 'motcua.db'}")
    with eng.begin() as conn:
        conn.exec_driver_sql("CREATE TRIGGER refuse BEFORE INSERT ON dossiers WHEN NEW.code = 'H42-0002' "
                             "BEGIN SELECT RAISE(ABORT, 'refused by test trigger'); END")
    eng.dispose()
    result, _ = run(tmp_path, "import", "--json", str(path))
    out = json.loads(result.stdout)
    assert (out["created"], out["errors"]) == (2, 1)
    assert out["error_rows"][0]["field"] == "(database)" and "refused by test trigger" in out["error_rows"][0]["error"]
    assert {r["code"] for r in db_rows(tmp_path)} == {"H42-0001", "H42-0006"}
    assert {r["to_status"] for r in db_rows(tmp_path, dossier_history)} == {"processing", "more_documents"}
