"""The `driftline` subcommands, one module per group; each adds its parser and handlers."""
