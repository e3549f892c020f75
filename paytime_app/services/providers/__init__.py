"""Payment provider adapters behind one small interface, chosen by slug from a registry."""
