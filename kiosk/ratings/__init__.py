"""Citizen satisfaction ratings: one tap on a face after a visit, anonymous (see docs/kiosk.md)."""
