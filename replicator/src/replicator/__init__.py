"""replicator controller."""
