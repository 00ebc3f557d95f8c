"""The lending systems' APIs and the pages that show their work."""
