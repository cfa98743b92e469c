"""Reference workloads with gold labels: support tickets and invoice documents."""
