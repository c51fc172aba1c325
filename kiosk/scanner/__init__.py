"""Camera QR scanner: the process that owns the USB camera, decodes receipt codes and tells the screen.

Modules: payload (what a code says), capture (camera/video, newest frame only), decoders (the chain),
pipeline (repeats, hints, one frame at a time), channel (the local event socket), service (the scanner
process and its supervised decode child), status (health for staff pages and `kiosk doctor`), web (SSE
relay and MJPEG preview), images (`kiosk scan --image`), cli (`kiosk scan`), demo (the demo's scanner).
See docs/scanner.md.
"""
