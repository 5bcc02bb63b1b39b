"""semcode: find code by meaning, locally.

The package is layered; data flows one way (see ARCHITECTURE.md):
workspace -> chunking -> index -> search -> (cli | lsp | mcp).
"""

__version__ = "0.2.0"
