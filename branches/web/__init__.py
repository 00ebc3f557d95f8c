"""The branch workspace over HTTP: the leads API and the pages of branch managers and account
managers (``leads_api``, ``pages``; the JSON shapes in ``lead_views``)."""
