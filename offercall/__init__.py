"""offercall: the composition root (settings, database, CLI, web app) of the loan-offer bot."""
