"""SMS gateway: drains the outbox through a USB modem with python-gammu.

The rest of the appliance uses `sms_gateway.api` only. This package never imports `kiosk`.
"""
