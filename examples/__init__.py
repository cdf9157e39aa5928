"""Runnable examples of applications that feed the lake (see README)."""
