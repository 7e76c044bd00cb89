"""Log bytes -> lines -> typed events, for both formats. Imports only tui.errors (docs/design.md)."""
