"""ACME manager, challenges, storage and renewal."""
