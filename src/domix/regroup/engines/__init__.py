"""Regroup engines, one file each, registered in ``regroup.engine.ENGINES`` (found by name on first
lookup, so adding a file is enough)."""
