"""Violations: scene configuration, signal state, pure rules, evidence packages and signing."""
