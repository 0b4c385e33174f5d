"""Pipeline ``iterate_mdn``."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
