"""Events for the rest of the platform: the database outbox published to RabbitMQ."""

from warpd.events.service import set_enabled, start_events

__all__ = ["set_enabled", "start_events"]
