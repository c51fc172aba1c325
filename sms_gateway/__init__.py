"""SMS gateway: drains the outbox through a USB modem with python-gammu.

The rest of the appliance uses `sms_gateway.api` only. This package never imports `kiosk`.
"""

from motcua import skip_httpx_cli

skip_httpx_cli()
