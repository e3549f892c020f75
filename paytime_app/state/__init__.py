"""Reflex states: one per feature, all on `AuthState`; handlers call services, never SQL."""
