"""greenflame server: HTTP API, web UI, storage and the command line."""
