"""The bank's lending systems around offercall: applicants a partner system submits and the
results sent back to it, the loan system's outcomes (applied … disbursed), and post-loan
alerts on customers' settlement data. Above ``branches`` (admitted applicants and alerts go
to branches and their account managers) and ``outbound`` (campaigns)."""
