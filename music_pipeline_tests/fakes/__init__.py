"""Local stand-ins for remote services, faithful at the HTTP boundary (127.0.0.1 only)."""
