"""The Model Context Protocol adapter (`semcode mcp`): coding agents search the same
per-workspace index as the CLI and the language server. `service` holds the logic over
the `Engine` (no SDK), `server` binds it to the official `mcp` SDK, `configs` prints the
client snippets."""
