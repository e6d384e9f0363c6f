"""The campaign dashboard served at /dashboard (read-only, from the report API)."""
