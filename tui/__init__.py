"""runctl, the controller: seven layered packages (docs/design.md); `runctl` is tui.cli.main."""
