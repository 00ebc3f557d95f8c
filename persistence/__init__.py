"""offercall's database: the engine, the schema, its migrations (Alembic), and the data access
the bot's actions and the channels share. Imports only ``core``."""
