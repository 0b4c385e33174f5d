"""Environments: making them, taking frames, action spaces, exploration and playing episodes.

Nothing here knows about Kedro.
"""
