"""service-router controller."""
