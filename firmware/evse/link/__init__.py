"""The link to the CSMS and to file servers: WebSocket (RFC 6455, sans-IO
and its asyncio adapter), TLS contexts, stream openers, HTTP(S)."""
