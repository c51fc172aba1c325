"""SMS gateway: drains the outbox through a USB modem with python-gammu.

Public API for the rest of the appliance is `enqueue` (see sms_gateway.outbox). This package
never imports `kiosk`.
"""
from sms_gateway.outbox import enqueue

__all__ = ["enqueue"]
