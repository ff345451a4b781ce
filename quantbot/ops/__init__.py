"""Operations: HTTP (health, metrics, status), MQTT bridge, scheduled jobs, notify plumbing."""
