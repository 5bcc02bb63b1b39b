"""Helpers shared by the language-server tests (and bench/lsp_freshness.py)."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

FILES = {
    "auth/tokens.py": '''
        import time


        def refresh_expired_token(session, expires_at):
            """Refresh the OAuth access token when it has expired."""
            if time.time() > expires_at:
                session.token = session.oauth.refresh(session.refresh_token)
            return session.token


        class UserAccount:
            def deactivate_account(self, reason):
                """Deactivate the account and remember why."""
                self.active = False
                self.deactivation_reason = reason
        ''',
    "web/cart.ts": '''
        export interface CartItem { sku: string; quantity: number; unitPrice: number }

        export function computeShoppingCartTotal(items: CartItem[], taxRate: number): number {
          const subtotal = items.reduce((sum, item) => sum + item.quantity * item.unitPrice, 0);
          return subtotal * (1 + taxRate);
        }
        ''',
    "server/ratelimit.go": '''
        package server

        import "time"

        // AllowRequestWithTokenBucket reports whether a request may pass the rate limiter.
        func AllowRequestWithTokenBucket(bucket *Bucket, now time.Time) bool {
        \tbucket.refill(now)
        \tif bucket.tokens < 1 {
        \t\treturn false
        \t}
        \tbucket.tokens--
        \treturn true
        }
        ''',
    "docs/notes.md": "# Notes\n\nNothing to see here, only prose about gardening.\n",
}

LEXICAL = {"embeddingModel": "off", "rerankerModel": "off"}


def write_workspace(root: Path, files: dict[str, str] | None = None) -> Path:
    for rel, text in (FILES if files is None else files).items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return root


def names(result: dict[str, Any]) -> list[str]:
    return [item["name"] for item in result["items"]]
