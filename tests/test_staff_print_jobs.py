"""Staff print-jobs page: an official reprints a lost or uncertain ticket or slip; jobs still waiting
are not offered (they print by themselves); each reprint is in the audit log."""
from __future__ import annotations

import sqlalchemy as sa

from kiosk.printing import jobs
from kiosk.printing.schema import print_jobs
from kiosk.printing.states import JobState
from kiosk.queue.core import take_ticket
from kiosk.staff import audit
from kiosk.staff.models import staff_audit
from kiosk.staff.testing import csrf_token, sign_in


def test_an_official_reprints_an_uncertain_ticket_and_a_waiting_one_is_not_offered(app, engine):
    cfg = app.config["MOTCUA"]
    with engine.begin() as conn:
        lost = jobs.submit_ticket(conn, cfg, take_ticket(conn, cfg, "HT"), source="kiosk")
        waiting = jobs.submit_ticket(conn, cfg, take_ticket(conn, cfg, "HT"), source="kiosk")
        conn.execute(sa.update(print_jobs).where(print_jobs.c.id == lost).values(state=JobState.UNCERTAIN))
    client = sign_in(app)
    body = client.get("/staff/print-jobs").get_data(as_text=True)
    assert f'id="job-{lost}"' in body and "Chưa rõ đã in chưa" in body
    row_waiting = body[body.index(f'id="job-{waiting}"'):].split("</tr>")[0]
    assert 'data-action="reprint"' not in row_waiting
    token = csrf_token(client, "/staff/print-jobs")
    resp = client.post(f"/staff/print-jobs/{lost}/reprint", data={"csrf_token": token}, follow_redirects=True)
    assert "Đã gửi lệnh in lại" in resp.get_data(as_text=True)
    with engine.connect() as conn:
        again = conn.execute(sa.select(print_jobs).order_by(print_jobs.c.id.desc())).mappings().first()
        original = conn.execute(sa.select(print_jobs).where(print_jobs.c.id == lost)).mappings().first()
        target = conn.execute(sa.select(staff_audit.c.target).where(
            staff_audit.c.action == audit.PRINT_REPRINT)).scalar_one()
    assert again["id"] not in (lost, waiting) and again["payload"] == original["payload"]
    assert again["state"] == JobState.PENDING and again["source"] == "staff"
    assert target == f"print_job:{lost}"
    assert client.post("/staff/print-jobs/9999/reprint", data={"csrf_token": token}).status_code == 404


def test_reprint_without_its_csrf_token_is_refused(app, engine):
    client = sign_in(app)
    assert client.post("/staff/print-jobs/1/reprint", data={}).status_code in (400, 403)


def test_notices_show_the_sms_text_and_phone_numbers_never_wrap(app, engine):
    from datetime import timezone

    from sms_gateway.schema import notices

    now = __import__("datetime").datetime.now(timezone.utc)
    with engine.begin() as conn:
        conn.execute(sa.insert(notices).values(
            idempotency_key="t14", dossier_code="HS-1", kind="result_ready", phone_raw="0912345678",
            phone_e164="+84912345678", text="UBND xa Yen Hoa: Ho so HS-1 da co ket qua.", state="queued",
            created_at=now, updated_at=now))
    body = sign_in(app).get("/staff/notices").get_data(as_text=True)
    assert "UBND xa Yen Hoa: Ho so HS-1 da co ket qua." in body
    assert '<td class="phone">+84912345678</td>' in body
    css = app.test_client().get("/static/staff/staff.css").get_data(as_text=True)
    assert ".phone { white-space: nowrap; }" in css
