"""Following the provincial system: sources behind one small interface (see docs/sources.md).

- `base.py`: the interface (`Source.fetch`, `Source.changes`), errors, and the one HTTP client.
- one module per kind: `opencps.py`, `dvcqg.py`, `http_json.py`, `dropfolder.py`.
- `store.py`: the only way a source's answer is written (through `kiosk.store.ingest`), plus the
  sync cursor and health.
- `lookup.py`: on-demand lookup for the kiosk screen, within a deadline.
- `sync.py`: the background service (`kiosk sync`); `cli.py`: `kiosk sync`, `kiosk source check`.
"""
