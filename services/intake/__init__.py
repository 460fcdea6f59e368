"""Intake: turns reports from every channel into incidents a dispatcher can act on."""
