"""First-party notifier plugins. Each imports only quantbot.api (and libraries)."""
