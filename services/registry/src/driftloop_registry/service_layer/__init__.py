"""The registry's use cases: registration, registered models, versions, aliases, lineage."""
