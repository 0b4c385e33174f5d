"""Pipeline ``gan``: the talk's GAN from V's parts, trained on V's frames and compared with V."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
