"""A small multi-language workspace that several test modules index."""

from __future__ import annotations

import textwrap
from pathlib import Path

FILES = {
    "src/http_client.py": '''
        """HTTP helpers."""
        import time

        MAX_ATTEMPTS = 5


        class HttpClient:
            def __init__(self, session):
                self.session = session

            def get_with_retry(self, url, attempts=MAX_ATTEMPTS):
                for attempt in range(attempts):
                    response = self.session.get(url)
                    if response.status_code < 500:
                        return response
                    time.sleep(2 ** attempt)  # exponential backoff before retrying
                raise RuntimeError("gave up")
        ''',
    "src/tokens.ts": '''
        export function refreshExpiredToken(token: Token): Token {
          if (token.expiresAt < Date.now()) {
            return issueNewToken(token.userId);
          }
          return token;
        }

        export class TokenCache {
          private byUser = new Map<string, Token>();
          lookup(userId: string): Token | undefined {
            return this.byUser.get(userId);
          }
        }
        ''',
    "pkg/parse.go": '''
        package pkg

        // ParseConfigFile reads a TOML configuration file from disk.
        func ParseConfigFile(path string) (*Config, error) {
            data, err := os.ReadFile(path)
            if err != nil {
                return nil, err
            }
            return decode(data)
        }
        ''',
    "README.md": "# Demo\n\nThis project retries HTTP requests and refreshes tokens.\n",
}


def write_files(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
