"""The commune hall kiosk: web app, scanner, printing, queue and staff pages."""
