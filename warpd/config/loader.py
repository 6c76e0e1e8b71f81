"""Load ``warpd.toml`` (tomllib) into the frozen schema, validated once.

Every refusal is a :class:`~warpd.errors.ConfigError` naming the file (or the
environment variable), the dotted key and the reason, so an operator can fix
it without reading code. ``WARPD_<TABLE>_<KEY>`` environment variables override
scalar keys; that is how secrets such as the DSN stay out of the file.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from warpd.config.schema import DEFAULT_PATH, Config
from warpd.errors import ConfigError

ENV_PREFIX = "WARPD_"
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


def load(path: Path | None = None, env: Mapping[str, str] | None = None) -> Config:
    """Read, override from ``env`` (the process environment unless given) and validate.

    A missing default file means defaults; a missing explicit file is an error.
    """
    explicit = path is not None
    path = path or DEFAULT_PATH
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        if explicit:
            raise ConfigError(str(path), "-", "file not found") from None
        text, source = "", "<defaults>"
    except OSError as exc:
        raise ConfigError(str(path), "-", f"cannot read: {exc.strerror}") from None
    else:
        source = str(path)
    return parse(text, source, os.environ if env is None else env)


def parse(text: str, source: str, env: Mapping[str, str]) -> Config:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(source, "-", f"not valid TOML: {exc}") from None
    _apply_env(data, env)
    config: Config = _build(Config, data, "", source)
    config = dataclasses.replace(config, source=source)
    _cross_check(config)
    return config


def _fields(cls: type[Any]) -> dict[str, tuple[dataclasses.Field[Any], Any]]:
    hints = typing.get_type_hints(cls)
    return {
        f.name: (f, hints[f.name])
        for f in dataclasses.fields(cls)
        if not f.metadata.get("internal")
    }


def _build(cls: type[Any], table: Mapping[str, Any], prefix: str, source: str) -> Any:
    known = _fields(cls)
    for key in table:
        if key not in known:
            where = prefix + key
            raise ConfigError(source, where, f"unknown key (known: {', '.join(sorted(known))})")
    values: dict[str, Any] = {}
    for name, (fld, hint) in known.items():
        if name in table:
            values[name] = _value(hint, fld, table[name], prefix + name, source)
    return cls(**values)


def _value(hint: Any, fld: dataclasses.Field[Any], raw: Any, key: str, source: str) -> Any:
    if dataclasses.is_dataclass(hint):
        if not isinstance(raw, dict):
            raise ConfigError(source, key, f"must be a table, not {_kind(raw)}")
        return _build(typing.cast(type[Any], hint), raw, key + ".", source)
    value = _scalar(hint, raw, key, source)
    _constrain(fld.metadata, value, key, source)
    return value


def _scalar(hint: Any, raw: Any, key: str, source: str) -> Any:
    if hint is bool:
        if isinstance(raw, bool):
            return raw
    elif hint is int:
        if isinstance(raw, int) and not isinstance(raw, bool):
            return raw
    elif hint is float:
        if isinstance(raw, int | float) and not isinstance(raw, bool):
            return float(raw)
    elif hint is str:
        if isinstance(raw, str):
            return raw
    elif hint is Path:
        if isinstance(raw, str) and raw:
            return Path(raw)
    elif typing.get_origin(hint) is tuple:
        item = typing.get_args(hint)[0]
        if isinstance(raw, list):
            return tuple(_scalar(item, v, f"{key}[{i}]", source) for i, v in enumerate(raw))
    raise ConfigError(source, key, f"must be {_type_name(hint)}, not {_kind(raw)}")


def _constrain(meta: Mapping[str, Any], value: Any, key: str, source: str) -> None:
    if "choices" in meta and value not in meta["choices"]:
        allowed = ", ".join(repr(c) for c in meta["choices"])
        raise ConfigError(source, key, f"must be one of {allowed}, not {value!r}")
    if "min" in meta and value < meta["min"]:
        raise ConfigError(source, key, f"must be at least {meta['min']}, not {value!r}")
    if "max" in meta and value > meta["max"]:
        raise ConfigError(source, key, f"must be at most {meta['max']}, not {value!r}")


def _cross_check(config: Config) -> None:
    db = config.database
    if db.pool_min > db.pool_max:
        raise ConfigError(
            config.source, "database.pool_min", f"{db.pool_min} exceeds pool_max {db.pool_max}"
        )
    listeners = {"http.listen": config.http.listen}
    listeners.update({"smpp.listen": config.smpp.listen, "smpp.tls_listen": config.smpp.tls_listen})
    sip = config.sip
    listeners.update({"sip.listen": sip.listen, "sip.tcp_listen": sip.tcp_listen,
                      "sip.tls_listen": sip.tls_listen})  # fmt: skip
    for key, text in listeners.items():
        if not text and key != "http.listen":
            continue  # an empty SMPP or SIP listener is off
        try:
            parse_listen(text)
        except ValueError as exc:
            raise ConfigError(config.source, key, str(exc)) from None
    if 0 < config.retention.keep_days < 31:
        raise ConfigError(config.source, "retention.keep_days", "must be 0 (keep) or at least 31")
    smpp = config.smpp
    if smpp.tls_listen and not (smpp.tls_cert and smpp.tls_key):
        raise ConfigError(config.source, "smpp.tls_listen", "needs smpp.tls_cert and smpp.tls_key")
    if bool(sip.tls_cert) != bool(sip.tls_key):
        raise ConfigError(config.source, "sip.tls_cert", "sip.tls_cert and sip.tls_key go together")
    if sip.enabled and not (sip.listen or sip.tcp_listen or (sip.tls_listen and sip.tls_cert)):
        raise ConfigError(config.source, "sip.listen", "every SIP listener is off")


def parse_listen(text: str) -> tuple[str, int]:
    """``host:port`` or ``[v6]:port`` -> (host, port); port 0 means any free port."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"must be host:port or [v6]:port, not {text!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ValueError(f"an IPv6 address needs brackets: {text!r}")
    return host, int(port)


def _apply_env(data: dict[str, Any], env: Mapping[str, str]) -> None:
    """Fold ``WARPD_<TABLE>_<KEY>`` variables into the parsed TOML."""
    for table_name, (_, hint) in _fields(Config).items():
        if not dataclasses.is_dataclass(hint):
            continue
        for key, (_, key_hint) in _fields(typing.cast(type[Any], hint)).items():
            var = f"{ENV_PREFIX}{table_name}_{key}".upper()
            if var in env:
                table = data.setdefault(table_name, {})
                if not isinstance(table, dict):
                    raise ConfigError("<toml>", table_name, "must be a table")
                table[key] = _from_env(key_hint, env[var], var)


def _from_env(hint: Any, text: str, var: str) -> Any:
    try:
        if hint is bool:
            lowered = text.strip().lower()
            if lowered in _TRUE | _FALSE:
                return lowered in _TRUE
            raise ValueError
        if hint is int:
            return int(text)
        if hint is float:
            return float(text)
    except ValueError:
        raise ConfigError(f"env {var}", var, f"must be {_type_name(hint)}, not {text!r}") from None
    return text


def _type_name(hint: Any) -> str:
    names = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}
    if hint is Path:
        return "a non-empty path string"
    if typing.get_origin(hint) is tuple:
        return f"a list of {_type_name(typing.get_args(hint)[0])}"
    return names.get(hint, getattr(hint, "__name__", str(hint)))


def _kind(raw: Any) -> str:
    if isinstance(raw, dict):
        return "a table"
    if isinstance(raw, list):
        return "a list"
    return f"{type(raw).__name__} {raw!r}"


def render(config: Config) -> str:
    """The effective configuration as TOML, secrets masked (``check-config``)."""
    lines: list[str] = [f"# effective configuration from {config.source}"]
    for table_name in _fields(Config):
        section = getattr(config, table_name)
        lines.append(f"\n[{table_name}]")
        for fld in dataclasses.fields(section):
            value = getattr(section, fld.name)
            if fld.metadata.get("secret") and value:
                lines.append(f'{fld.name} = "********"')
            else:
                lines.append(f"{fld.name} = {_toml(value)}")
    return "\n".join(lines) + "\n"


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, tuple):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    escaped = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'
