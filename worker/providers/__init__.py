"""Provider adapters: translate the official SDKs into one request/response/error contract."""
