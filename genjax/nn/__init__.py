"""Shared flax.nnx layers, used functionally (see STYLE.md).

Every family imports its layers from here rather than writing its own.
"""
