"""An example hil plugin: each module adds one entry to one of hil's registries (docs/plugins.md)."""
