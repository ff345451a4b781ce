"""`log` notifier: writes chosen events to the daemon's structured log (journald on a VPS)."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from quantbot.api import Event, Notifier, PluginConfig, check_topic_pattern

DEFAULT_TOPICS = ("token.accepted", "whale.signal", "order.#", "plugin.disabled", "config.reloaded")


class LogNotifierConfig(PluginConfig, frozen=True, kw_only=True):
    topics: Annotated[
        tuple[str, ...], msgspec.Meta(description="topic patterns to log (* one segment, # the rest)")
    ] = DEFAULT_TOPICS
    level: Annotated[Literal["debug", "info", "warning"], msgspec.Meta(description="log level")] = "info"

    def __post_init__(self) -> None:
        if not self.topics:
            raise ValueError("topics: give at least one topic pattern")
        for pattern in self.topics:
            check_topic_pattern(pattern)


class LogNotifier(Notifier):
    Config = LogNotifierConfig
    config: LogNotifierConfig

    def topics(self) -> tuple[str, ...]:
        return self.config.topics

    async def notify(self, event: Event) -> None:
        emit = getattr(self.log, self.config.level)
        emit("notify", topic=event.topic, payload=msgspec.to_builtins(event))
