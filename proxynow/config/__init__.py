"""Configuration: static and dynamic models, loaders, errors and JSON Schema."""

from proxynow.config.dynamic import DynamicConfig
from proxynow.config.static import StaticConfig

__all__ = ["DynamicConfig", "StaticConfig"]
