"""The operator console: catalogues, serving and a real browser end to end."""
