"""One module per feature; each exposes `<feature>_page()` rendering its state."""
