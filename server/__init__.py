"""greenflame server: the HTTP service (API, web UI), storage, the analysis pipeline and tickets."""
