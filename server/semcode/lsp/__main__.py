"""`python -m semcode.lsp [--stdio] [--log-file PATH] [--log-level L]`."""

import sys

from semcode.lsp.server import serve

raise SystemExit(serve(sys.argv[1:]))
