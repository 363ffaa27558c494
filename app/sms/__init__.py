"""Text messages: templates and backends, the outbox record and resending, the provider adapters."""
