"""Evaluation: tables and plots of per-domain validation losses."""
