"""Domain services: plain Python, keyword-only, explicit session; no Reflex, no HTTP."""
