"""The `runctl` command line: entry, subcommands, plain-text views (docs/design.md, docs/cli.md)."""
