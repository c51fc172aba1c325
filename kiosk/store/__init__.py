"""The dossier store: tables (schema), the one ingest path (ingest) and lookups (dossiers)."""
