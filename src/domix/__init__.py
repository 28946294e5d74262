"""domix: regroup a corpus into the domains that matter, and balance their mixture in training."""

__version__ = "0.1.0"
