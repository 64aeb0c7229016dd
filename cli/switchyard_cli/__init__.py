"""Switchyard command line."""
