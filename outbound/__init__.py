"""Outbound campaigns: whitelist import, compliance rules, the dialer, funnel and A/B reports."""
