"""The workspace's HTTP APIs for outbound: campaigns, whitelist uploads and the call log."""
