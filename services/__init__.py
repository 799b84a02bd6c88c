"""The pingxuan services, one package each."""
