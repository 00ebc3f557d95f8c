"""What every offercall package shares and nothing of ours is beneath: settings, the clock,
masking of personal data, and the vocabulary (outcomes and statuses). Imports nothing of ours."""
