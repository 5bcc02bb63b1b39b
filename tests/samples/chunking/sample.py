"""Account helpers: token refresh and user lookup."""

import time
from dataclasses import dataclass

MAX_RETRIES = 3
default_timeout = 10


@dataclass
class Token:
    """An access token with its expiry."""

    value: str
    expires_at: float

    def expired(self, now: float | None = None) -> bool:
        return (now or time.time()) >= self.expires_at


class AccountClient:
    # Talks to the account service.
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self._token: Token | None = None

    @property
    def token(self) -> Token | None:
        return self._token

    def refresh_token(self) -> Token:
        """Refresh an expired access token."""
        for _ in range(MAX_RETRIES):
            self._token = Token("t", time.time() + 3600)
        return self._token

    class Error(Exception):
        pass


# Find a user by id.
async def get_user_account(client: AccountClient, user_id: int) -> dict:
    def _headers() -> dict:
        return {"Authorization": client.token.value}

    return {"id": user_id, "headers": _headers()}


if __name__ == "__main__":
    print(get_user_account)
