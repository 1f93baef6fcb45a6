"""Who may read which accounts: access tokens, their scopes, and the audit log of the service."""
