"""Training harness: data module, Lightning module, metrics, fit one run."""
