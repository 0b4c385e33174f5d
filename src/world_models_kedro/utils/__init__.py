"""Small shared helpers: atomic writes, seeding, progress, worker pools, optional packages."""
