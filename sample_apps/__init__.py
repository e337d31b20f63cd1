"""Sample workloads with known inefficiencies, each beside its fixed twin."""
