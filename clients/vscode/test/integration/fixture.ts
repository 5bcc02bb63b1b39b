/** A small multi-language workspace in a temp dir, with known answers. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export const FILES: Record<string, string> = {
  'auth/tokens.py': `"""Access tokens."""
import time


class TokenStore:
    """Keeps OAuth tokens per user."""

    def __init__(self):
        self.tokens = {}

    def refresh_expired_tokens(self, now=None):
        """Refresh every token whose expiry time has passed."""
        now = now or time.time()
        for user, token in self.tokens.items():
            if token.expires_at < now:
                self.tokens[user] = token.refresh()


def revoke_token(store, user):
    """Remove the token of a user."""
    store.tokens.pop(user, None)
`,
  'net/http_client.py': `import random
import time


class HttpClient:
    def retry_with_backoff(self, request, attempts=3):
        """Send a request again after a growing, jittered delay."""
        for attempt in range(attempts):
            try:
                return self.send(request)
            except ConnectionError:
                time.sleep((2 ** attempt) + random.random())
        raise ConnectionError("gave up")

    def send(self, request):
        raise NotImplementedError
`,
  'web/format.ts': `export interface Money {
  cents: number;
  currency: string;
}

/** Formats an amount of money for display, with the currency symbol. */
export function formatCurrency(amount: Money): string {
  const symbol = amount.currency === 'EUR' ? '€' : '$';
  return symbol + (amount.cents / 100).toFixed(2);
}

export class ShoppingCart {
  private items: Money[] = [];

  addItem(price: Money): void {
    this.items.push(price);
  }

  totalPrice(): number {
    return this.items.reduce((sum, m) => sum + m.cents, 0);
  }
}
`,
  'util/strings.go': `package util

import "strings"

// ParseCsvLine splits one line of comma separated values into fields.
func ParseCsvLine(line string) []string {
	return strings.Split(line, ",")
}
`,
  'README.md': '# fixture\n\nA tiny project for semcode tests.\n',
};

export function makeWorkspace(): { root: string; indexDir: string; cleanup(): void } {
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'semcode-vscode-'));
  const root = path.join(base, 'proj');
  for (const [rel, text] of Object.entries(FILES)) {
    const file = path.join(root, rel);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, text);
  }
  const indexDir = path.join(base, 'index');
  fs.mkdirSync(indexDir);
  return { root, indexDir, cleanup: () => fs.rmSync(base, { recursive: true, force: true }) };
}
