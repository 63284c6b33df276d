"""The central service: decides access, records usage, serves the admin API."""
