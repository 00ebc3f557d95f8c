"""offercall's aiohttp web server: chat endpoints and pages."""
