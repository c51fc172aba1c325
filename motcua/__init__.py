"""Shared base of the appliance: configuration, database engine and migrations, status vocabulary.

Both `kiosk` and `sms_gateway` import this package; it imports neither of them.
"""
