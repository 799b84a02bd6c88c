"""The ``scoring`` service: panel review (集中評審)."""
