"""greenflame agent: runs inside the profiled process. Standard library only."""
