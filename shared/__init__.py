"""Code every pingxuan service imports: contracts, dependency providers, plugin registry."""
