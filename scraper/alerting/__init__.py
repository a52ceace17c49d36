"""Alerting: rules, the alert engine that follows the fleet state, its storage, maintenance windows,
notifications and the Prometheus rules export. See docs/alerts.md."""
