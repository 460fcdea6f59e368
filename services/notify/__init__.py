"""Notify: receipts, progress letters, unit alerts and escalations."""
