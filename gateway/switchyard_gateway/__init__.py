"""The aiohttp gateway: config store -> router -> provider adapters -> HTTP."""
