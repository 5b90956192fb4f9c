"""Configuration providers: each turns an outside source into dynamic configuration."""
