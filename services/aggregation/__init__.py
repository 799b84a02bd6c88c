"""The ``aggregation`` service: weighted results (加權統分) and the publicity list (公示名單)."""
