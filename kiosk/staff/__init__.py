"""Staff pages (/staff/): sign-in, dossiers, notices, device health, audit log, accounts.

The guard (kiosk/staff/guard.py, `guard.init_app`) also covers the counter pages under /counter/;
the pages are the blueprint in kiosk/staff/views.py. Both are registered in kiosk/app.py.
See docs/staff.md.
"""
