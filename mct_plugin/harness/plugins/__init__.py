"""The plugin system: hook specifications, the plugin manager, the registries built from it,
the harness's default plugin, and the lifecycle events of a run."""
