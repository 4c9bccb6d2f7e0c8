"""The `driftline` command and its subcommands, including the demo and the report."""
