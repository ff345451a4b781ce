"""Entry-point discovery and loading. Nothing is imported until a plugin is needed or listed."""

from __future__ import annotations

import importlib.metadata as md
from dataclasses import dataclass, field
from typing import Any

import msgspec
import structlog

from quantbot.api import Executor, Filter, Notifier, Plugin, PluginConfig, Strategy
from quantbot.config import PLUGIN_SECTIONS, ConfigError
from quantbot.secrets import Secret, SigningKey

log = structlog.get_logger(component="plugins")

GROUP_PREFIX = "quantbot."
BASES: dict[str, type[Plugin]] = {
    "filters": Filter,
    "strategies": Strategy,
    "executors": Executor,
    "notifiers": Notifier,
}


class PluginLoadError(ConfigError):
    """A plugin's import failed or it is not a valid plugin class."""


@dataclass
class PluginEntry:
    section: str
    name: str
    value: str
    distribution: str
    version: str
    entry_point: md.EntryPoint
    _loaded: type[Plugin] | None = field(default=None, repr=False)

    @property
    def group(self) -> str:
        return GROUP_PREFIX + self.section

    def load(self) -> type[Plugin]:
        if self._loaded is not None:
            return self._loaded
        where = f"plugin {self.name!r} ({self.group}) from distribution {self.distribution} {self.version}"
        try:
            obj = self.entry_point.load()
        except Exception as exc:
            raise PluginLoadError([f"{where} failed to import: {type(exc).__name__}: {exc}"]) from exc
        base = BASES[self.section]
        if not (isinstance(obj, type) and issubclass(obj, base)):
            raise PluginLoadError([f"{where}: {self.value} is not a subclass of quantbot.api.{base.__name__}"])
        if not (isinstance(obj.Config, type) and issubclass(obj.Config, PluginConfig)):
            raise PluginLoadError([f"{where}: its Config must subclass quantbot.api.PluginConfig"])
        self._loaded = obj
        return obj


class PluginCatalog:
    """Every plugin installed in this environment, by config section and entry-point name."""

    def __init__(self, entries: list[PluginEntry]) -> None:
        self._entries: dict[str, dict[str, PluginEntry]] = {s: {} for s in PLUGIN_SECTIONS}
        for e in entries:
            other = self._entries[e.section].get(e.name)
            if other is not None and other.value != e.value:
                log.warning(
                    "plugin.name_clash", group=e.group, name=e.name, kept=other.distribution, ignored=e.distribution
                )
                continue
            self._entries[e.section][e.name] = e

    @classmethod
    def discover(cls) -> PluginCatalog:
        entries = []
        for section in PLUGIN_SECTIONS:
            for ep in md.entry_points(group=GROUP_PREFIX + section):
                dist = ep.dist
                entries.append(
                    PluginEntry(
                        section=section,
                        name=ep.name,
                        value=ep.value,
                        distribution=dist.name if dist else "?",
                        version=dist.version if dist else "?",
                        entry_point=ep,
                    )
                )
        return cls(entries)

    def names(self, section: str) -> list[str]:
        return sorted(self._entries[section])

    def entries(self, section: str) -> list[PluginEntry]:
        return [self._entries[section][n] for n in self.names(section)]

    def get(self, section: str, name: str) -> PluginEntry:
        return self._entries[section][name]

    def config_type(self, section: str, name: str) -> type[msgspec.Struct]:
        return self.get(section, name).load().Config

    def schema(self, section: str, name: str) -> dict[str, Any]:
        return msgspec.json.schema(self.config_type(section, name), schema_hook=_schema_hook)

    def warn_unloadable(self, used: set[tuple[str, str]]) -> list[str]:
        """Try every installed plugin the config does not use; log (do not fail on) broken ones."""
        broken = []
        for section in PLUGIN_SECTIONS:
            for entry in self.entries(section):
                if (section, entry.name) in used:
                    continue
                try:
                    entry.load()
                except PluginLoadError as exc:
                    broken.append(str(exc))
                    log.warning("plugin.unloadable", group=entry.group, name=entry.name, error=str(exc))
        return broken


def _schema_hook(tp: type) -> dict[str, Any]:
    if isinstance(tp, type) and issubclass(tp, Secret):
        kinds = "file, credential" if issubclass(tp, SigningKey) else "env, file, credential"
        return {"type": "object", "description": f"secret reference, one of: {kinds}"}
    raise NotImplementedError(tp)
