"""Notion: the API (rate-limited, retried, clear errors), the property mapping, and the
tracks database as a mirror of the catalog and a work queue."""
