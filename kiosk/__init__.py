"""The commune hall kiosk: web app, scanner, printing, queue and staff pages."""

from motcua import skip_httpx_cli

skip_httpx_cli()
