"""First-party filter plugins. Each imports only quantbot.api (and libraries)."""
