"""First-party executor plugins. Each imports only quantbot.api (and libraries)."""
