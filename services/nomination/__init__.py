"""The ``nomination`` service: unit nomination (單位推薦) and preliminary review (初步審核)."""
