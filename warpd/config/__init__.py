"""Configuration: the TOML schema and its validating loader."""

from warpd.config.loader import load, parse, parse_listen, render
from warpd.config.schema import Config

__all__ = ["Config", "load", "parse", "parse_listen", "render"]
