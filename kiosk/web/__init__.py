"""The citizen-facing kiosk screens (blueprint `citizen`, kiosk/web/views.py). See docs/kiosk.md."""
