"""Events for the rest of the platform: the database outbox published to RabbitMQ."""

from warpd.events.publisher import EventsMetrics, OutboxPublisher, set_enabled, start_events

__all__ = ["EventsMetrics", "OutboxPublisher", "set_enabled", "start_events"]
