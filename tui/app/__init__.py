"""The Textual app: screens, widgets, key actions, messages, stylesheet, --serve (docs/design.md)."""
